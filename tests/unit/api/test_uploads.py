"""No I/O beyond test files: TNTP uploads, strict JSON bodies, edit conversion, and the API
process not loading the model package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.edits import to_domain
from api.json_body import loads
from api.tntp_import import network_from_tntp_folder, parse_tntp
from domain.errors import InvalidCommand
from simulation_worker.model.tntp import load_tntp_folder
from tests.conftest import REPO

NETWORKS = REPO / "tests" / "data" / "networks"
NET = """<NUMBER OF NODES> 3
<FIRST THRU NODE> 1
<END OF METADATA>
~ init term capacity length fft b power speed toll type ;
1 2 1000 1 1 0.15 4 0 0 1 ;
2 3 1000 1 1 0.15 4 0 0 1 ;
1 3 500 2 3 0.15 4 0 0 1 ;
"""
TRIPS = """<NUMBER OF ZONES> 2
<END OF METADATA>
Origin 1
 2 : 30.0;
Origin 2
 1 : 10.0;
"""


def read(folder: Path, kind: str) -> str | None:
    found = sorted(folder.glob(f"*_{kind}.tntp"))
    return found[0].read_text() if found else None


@pytest.mark.parametrize("name", ["SiouxFalls", "BerlinFriedrichshain", "Winnipeg", "Anaheim",
                                  "Barcelona", "ChicagoSketch"])
def test_an_upload_reads_like_the_models_own_reader(name: str) -> None:
    """ChicagoSketch's trips file is gzipped, and its node file is in Illinois East
    state-plane feet (NAD27, EPSG:26771): given that crs, the import reprojects it."""
    folder = NETWORKS / name
    network = network_from_tntp_folder(folder, crs="EPSG:26771" if name == "ChicagoSketch"
                                       else None)
    case = load_tntp_folder(folder)
    net = case.network
    assert [n.id for n in network.nodes] == net.node_ids.tolist()
    assert [(k.from_node, k.to_node, k.capacity, k.length, k.free_flow_time, k.b, k.power,
             k.toll, k.link_type) for k in network.links] == [
        (int(net.link_from[i]), int(net.link_to[i]), net.capacity[i], net.length[i],
         net.free_flow_time[i], net.bpr_b[i], net.bpr_power[i], net.toll[i],
         int(net.link_type[i])) for i in range(net.n_links)]
    assert len(network.zones) == len(case.zones)
    total = sum(t for _, _, t in network.od_matrix)
    assert total == pytest.approx(float(case.trips.sum()), rel=1e-12)
    assert network.problems() == []
    if name == "ChicagoSketch":  # the six-county region round Chicago (87.63 W, 41.88 N)
        assert all(-89.0 < n.x < -87.0 and 41.0 < n.y < 42.8 for n in network.nodes)


def test_projected_node_coordinates_without_a_crs_are_one_problem_naming_the_fix() -> None:
    with pytest.raises(InvalidCommand) as refused:
        network_from_tntp_folder(NETWORKS / "ChicagoSketch")
    assert refused.value.problems == [
        "node: node 1 is at (690309, 1.97602e+06), which is not a WGS84 longitude/latitude: "
        "give the node file's crs (an EPSG code such as EPSG:26916) to reproject it, or leave "
        "the node file out"]


def test_every_bad_line_is_named_with_its_file_and_line() -> None:
    net = NET.replace("2 3 1000 1 1", "2 3 nan 1 1").replace("1 3 500", "1 x 500")
    trips = TRIPS.replace(" 2 : 30.0;", " 2 : -30.0;").replace(" 1 : 10.0;", " 9 : 1;")
    network, problems = parse_tntp(net + "1 2\n", trips, None, 100)
    assert network is None
    assert problems == [
        "net line 6: capacity must be a finite number, not nan",
        "net line 7: term_node 'x' is not a number",
        "net line 8: expected at least 7 fields, found 2",
        "trips line 4: trips 1->2 is negative (-30.0)",
        "trips line 6: destination zone 9 is not in 1..2"]


def test_python_only_number_syntax_is_refused_like_every_other_importer() -> None:
    """float() and int() read '1_000' and other scripts' digits; the GMNS, CSV and edit
    readers refuse them (rules.decimal), and so does TNTP, naming the column."""
    net = NET.replace("2 3 1000 1 1", "2 3 1_000 1 1").replace("1 3 500 2",
                                                                "1 3 500 \uff12")
    trips = TRIPS.replace(" 1 : 10.0;", " \u0661 : 10.0;")
    network, problems = parse_tntp(net, trips, None, 100)
    assert network is None
    assert problems == [
        "net line 6: capacity '1_000' is not a plain decimal number (digits 0-9, an optional "
        "sign, point and exponent; no '_' or other digits)",
        "net line 7: length '\uff12' is not a plain decimal number (digits 0-9, an optional "
        "sign, point and exponent; no '_' or other digits)",
        "trips line 6: destination zone '\u0661' is not an integer"]


def test_a_small_upload_gives_nodes_links_zones_and_trips() -> None:
    network, problems = parse_tntp(NET, TRIPS, None, 100)
    assert problems == [] and network is not None
    assert [n.id for n in network.nodes] == [1, 2, 3]
    assert [(z.id, z.population, z.jobs) for z in network.zones] == [(1, 30.0, 10.0),
                                                                    (2, 10.0, 30.0)]
    assert network.od_matrix == ((1, 2, 30.0), (2, 1, 10.0))


def test_planar_node_coordinates_need_their_crs() -> None:
    node = "Node X Y ;\n1 500000 4000000 ;\n2 500100 4000000 ;\n3 500100 4000100 ;\n"
    network, problems = parse_tntp(NET, TRIPS, node, 100)
    assert network is None and len(problems) == 1 and "give the node file's crs" in problems[0]
    network, problems = parse_tntp(NET, TRIPS, node, 100, "EPSG:32633")  # UTM 33N
    assert problems == [] and network is not None and network.problems() == []
    node_1 = network.nodes[0]
    assert 14.9 < node_1.x < 15.1 and 36.0 < node_1.y < 36.2  # 15 E is the zone's meridian
    for node_file in (node, None):  # a bad crs is refused with or without a node file
        _, problems = parse_tntp(NET, TRIPS, node_file, 100, "EPSG:not-a-code")
        assert problems == ["crs 'EPSG:not-a-code' is not a coordinate reference system "
                            "PROJ knows (give an EPSG code such as EPSG:27700)"]


@pytest.mark.parametrize("zones", ["999999999", "2147483648", "abc"])
def test_a_huge_or_bad_zone_count_is_refused_without_allocating(zones: str) -> None:
    _, problems = parse_tntp(NET, TRIPS.replace("<NUMBER OF ZONES> 2", f"<NUMBER OF ZONES> "
                                                f"{zones}"), None, 1000)
    assert len(problems) == 1 and "zones" in problems[0].lower(), problems


def test_a_folder_without_trips_is_an_invalid_command(tmp_path: Path) -> None:
    (tmp_path / "x_net.tntp").write_text(NET)
    with pytest.raises(InvalidCommand):
        network_from_tntp_folder(tmp_path)


@pytest.mark.parametrize("body", ['{"gap": NaN}', '{"gap": Infinity}', '{"gap": -Infinity}',
                                  '{"gap": 1e400}', '{"gap": [-1e999]}',
                                  '{"n": ' + "9" * 5000 + "}"])
def test_json_bodies_refuse_non_finite_numbers(body: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(body)


def test_json_bodies_keep_ordinary_numbers() -> None:
    assert loads('{"a": 1e308, "b": -0.5, "c": 12, "d": "NaN"}') == {
        "a": 1e308, "b": -0.5, "c": 12, "d": "NaN"}


def test_an_unknown_edit_is_refused_not_taken_for_a_demand_change() -> None:
    class Unknown:
        op = "teleport"

    fake: Any = Unknown()
    with pytest.raises(InvalidCommand):
        to_domain([fake])


def test_the_api_process_does_not_load_the_model_package() -> None:
    script = ("import sys, api.app, api.routes.datasets, infra.http; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('numba', 'simulation_worker')))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("old", "new"), [
    ("<NUMBER OF NODES> 3", "<NUMBER OF NODES> 1000000000000"),
    ("<NUMBER OF NODES> 3", "<NUMBER OF NODES> 100000"),  # 3 links up to node 3: at most 6
    ("<NUMBER OF NODES> 3", "<NUMBER OF NODES> 2.5"),
    ("<FIRST THRU NODE> 1", "<FIRST THRU NODE> 1.5"),
    ("1 2 1000 1 1", "99999999999999999999 2 1000 1 1"),
    ("1 2 1000 1 1", "0 2 1000 1 1"),
    ("1 2 1000 1 1", "1 2.5 1000 1 1"),
    ("0.15 4 0 0 1 ;\n2 3", "0.15 4 0 0 1.5 ;\n2 3"),
    ("0.15 4 0 0 1 ;\n2 3", "0.15 4 0 0 -1 ;\n2 3"),
    ("0.15 4 0 0 1 ;\n2 3", "0.15 4 0 0 2147483648 ;\n2 3"),
    ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 4"),  # zone 4: the network has 3 nodes
    ("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 100000"),
])
def test_the_model_and_the_import_refuse_the_same_hostile_headers_and_ids(
        tmp_path: Path, old: str, new: str) -> None:
    # Each of these once reached the model's reader as an overflow, a silent truncation or
    # an allocation of terabytes; both readers now refuse it with a line naming the value.
    from simulation_worker.model import ModelInputError

    net, trips = NET.replace(old, new), TRIPS.replace(old, new)
    assert (net, trips) != (NET, TRIPS)
    network, problems = parse_tntp(net, trips, None, 200_000)
    assert problems or (network is not None and network.problems()), (old, new)
    (tmp_path / "x_net.tntp").write_text(net)
    (tmp_path / "x_trips.tntp").write_text(trips)
    with pytest.raises(ModelInputError) as refused:
        load_tntp_folder(tmp_path)
    value = new.split()[-1] if new.startswith("<") else None
    assert value is None or value in str(refused.value), str(refused.value)
