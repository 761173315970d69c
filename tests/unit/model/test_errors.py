"""Each kind of malformed network or demand gets its own error naming the offending row."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from simulation_worker.model import (
    CostParameters,
    ExplicitDemand,
    ModelInput,
    TntpCase,
    Zone,
    load_tntp_folder,
    make_network,
    run_model,
)
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.errors import (
    DisconnectedDemandError,
    InvalidLinkParameterError,
    InvalidParameterError,
    MalformedRowError,
    MissingFileError,
    NegativeCapacityError,
    NegativeDemandError,
    NonFiniteValueError,
    UnknownNodeError,
    UnknownZoneError,
)
from tests.unit.model.conftest import network_folder

# Line 12 of SiouxFalls_net.tntp is the first link: "1 2 25900.20064 6 6 0.15 4 0 0 1 ;".
FIRST_LINK = 12


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "net"
    shutil.copytree(network_folder("SiouxFalls"), folder)
    return folder


def _edit_line(path: Path, number: int, field: int, value: str) -> None:
    lines = path.read_text().splitlines()
    fields = lines[number - 1].split()
    fields[field] = value
    lines[number - 1] = "\t" + "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("field", "value", "error", "words"),
    [
        (1, "99", UnknownNodeError, "unknown node 99"),
        (2, "-5", NegativeCapacityError, "capacity"),
        (4, "nan", NonFiniteValueError, "free_flow_time"),
        (3, "six", MalformedRowError, "length"),
        (6, "-1", InvalidLinkParameterError, "bpr_power"),
        (4, "-2", InvalidLinkParameterError, "free_flow_time"),
    ],
)
def test_malformed_link_row_names_the_row(tmp_path: Path, field: int, value: str,
                                          error: type[Exception], words: str) -> None:
    folder = _copy(tmp_path)
    _edit_line(folder / "SiouxFalls_net.tntp", FIRST_LINK, field, value)
    with pytest.raises(error, match=re.escape(words)) as caught:
        load_tntp_folder(folder)
    assert f"line {FIRST_LINK}" in str(caught.value)


def test_short_link_row_is_malformed(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    net = folder / "SiouxFalls_net.tntp"
    lines = net.read_text().splitlines()
    lines[FIRST_LINK - 1] = "\t1\t2\t25900 ;"
    net.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedRowError, match=f"line {FIRST_LINK}: expected at least 7"):
        load_tntp_folder(folder)


def _trips_with(tmp_path: Path, old: str, new: str) -> Path:
    folder = _copy(tmp_path)
    trips = folder / "SiouxFalls_trips.tntp"
    text = trips.read_text()
    assert old in text
    trips.write_text(text.replace(old, new, 1))
    return folder


@pytest.mark.parametrize(
    ("old", "new", "error", "words"),
    [
        ("2 :    100.0;", "25 :    100.0;", UnknownZoneError, "destination zone 25"),
        ("2 :    100.0;", "2 :   -100.0;", NegativeDemandError, "trips 1->2 is negative"),
        ("2 :    100.0;", "2 :    nan;", NonFiniteValueError, "trips 1->2"),
        ("2 :    100.0;", "2 :    lots;", MalformedRowError, "not a number"),
        ("Origin \t1", "Origin \t30", UnknownZoneError, "origin zone 30"),
        # more digits than an int64 holds: refused, not an OverflowError traceback
        ("2 :    100.0;", "99999999999999999999 :    100.0;", UnknownZoneError,
         "destination zone 99999999999999999999 is not in 1..24"),
    ],
)
def test_malformed_trips_row_names_the_row(tmp_path: Path, old: str, new: str,
                                           error: type[Exception], words: str) -> None:
    folder = _trips_with(tmp_path, old, new)
    with pytest.raises(error, match=re.escape(words)) as caught:
        load_tntp_folder(folder)
    assert "SiouxFalls_trips.tntp line" in str(caught.value)


def test_missing_trips_file(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "SiouxFalls_trips.tntp").unlink()
    with pytest.raises(MissingFileError, match=r"no \*_trips.tntp"):
        load_tntp_folder(folder)


def test_disconnected_od_pair_with_demand_is_named() -> None:
    # 1 -> 3 -> 2 exists; nothing reaches zone 4's centroid.
    net = make_network(np.array([1, 3]), np.array([3, 2]), np.array([10.0, 10.0]),
                       np.array([1.0, 1.0]), np.array([1.0, 1.0]),
                       node_ids=np.array([1, 2, 3, 4]))
    zones = (Zone(1, 1, 1, 0), Zone(2, 2, 0, 1), Zone(4, 4, 0, 1))
    trips = np.array([[0.0, 5.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(DisconnectedDemandError) as refused:
        run_model(ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips)))
    assert str(refused.value) == (
        "1 OD pair(s) with 2 trips have no path (the first: zone 1 -> zone 4); zones most "
        "often cut off: as destination 4 (1 pair), as origin 1 (1 pair); connect those "
        'zones, or run with unreachable_demand "drop" (cartolog model run --unreachable drop) '
        "to assign the rest and report it")


def test_demand_with_no_path_can_be_dropped_and_reported() -> None:
    """decision 0147: the run assigns what has a path, as if the rest were not there, and
    says what it left out; its input hash differs from the refusing run's."""
    from dataclasses import replace

    from simulation_worker.model import AssignmentSettings, content_hash

    net = make_network(np.array([1, 3]), np.array([3, 2]), np.array([10.0, 10.0]),
                       np.array([1.0, 1.0]), np.array([1.0, 1.0]),
                       node_ids=np.array([1, 2, 3, 4]))
    zones = (Zone(1, 1, 1, 0), Zone(2, 2, 0, 1), Zone(4, 4, 0, 1))
    trips = np.array([[0.0, 5.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    dropping = ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips),
                          assignment=AssignmentSettings(unreachable="drop"))
    result = run_model(dropping)
    kept = trips.copy()
    kept[0, 2] = 0.0
    plain = run_model(ModelInput(network=net, zones=zones, demand=ExplicitDemand(kept)))
    assert (result.unassigned_trips, result.unassigned_pairs) == (2.0, 1)
    assert result.unassigned_note is not None and "zone 1 -> zone 4" in result.unassigned_note
    np.testing.assert_array_equal(result.trips, kept)
    np.testing.assert_array_equal(result.links.flow, plain.links.flow)
    assert result.indicators == plain.indicators
    assert plain.unassigned_pairs == 0 and plain.unassigned_note is None
    refusing = replace(dropping, assignment=AssignmentSettings())
    assert content_hash(dropping) != content_hash(refusing)


def test_path_through_a_centroid_does_not_count_as_connected() -> None:
    # The only way from 1 to 3 passes through centroid 2, below the first thru node.
    net = make_network(np.array([1, 2]), np.array([2, 3]), np.array([10.0, 10.0]),
                       np.array([1.0, 1.0]), np.array([1.0, 1.0]), first_thru_node=4)
    zones = (Zone(1, 1, 1, 0), Zone(2, 2, 0, 0), Zone(3, 3, 0, 1))
    trips = np.zeros((3, 3))
    trips[0, 2] = 1.0
    with pytest.raises(DisconnectedDemandError, match=r"the first: zone 1 -> zone 3\)"):
        run_model(ModelInput(network=net, zones=zones, demand=ExplicitDemand(trips)))


def test_nan_in_programmatic_network_names_the_link() -> None:
    net = make_network(np.array([1]), np.array([2]), np.array([np.nan]), np.array([1.0]),
                       np.array([1.0]))
    zones = (Zone(1, 1, 1, 0), Zone(2, 2, 0, 1))
    with pytest.raises(NonFiniteValueError, match=r"link 1 \(1->2\): capacity"):
        run_model(ModelInput(network=net, zones=zones,
                             demand=ExplicitDemand(np.array([[0.0, 1.0], [0.0, 0.0]]))))


@pytest.mark.parametrize("factors", [(np.nan, 0.0), (-1.0, 0.0), (0.0, np.inf), (0.0, -0.5)])
def test_a_cost_factor_must_be_finite_and_not_negative(sioux_falls: TntpCase,
                                                       factors: tuple[float, float]) -> None:
    # A negative factor with tolls makes links cost less than nothing, which no shortest-path
    # search handles; NaN or inf used to end as "no path" for the first OD pair.
    toll, distance = factors
    model = sioux_falls.model_input(CostParameters(toll_factor=toll, distance_factor=distance))
    with pytest.raises(InvalidParameterError, match=r"factor .* must be a finite number >= 0"):
        run_model(model)
    classes = (VehicleClass("car", toll_factor=toll, distance_factor=distance),)
    with pytest.raises(InvalidParameterError, match=r"class 'car': .* factor"):
        assign_classes(model, {"car": np.asarray(model.demand.trips)}, classes)
