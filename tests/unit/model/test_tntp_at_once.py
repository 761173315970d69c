"""The TNTP reader's whole-file paths give exactly what the row-by-row parser gives, and fall
back to it (and its named errors) on anything irregular."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulation_worker.model import tntp
from simulation_worker.model.errors import MalformedRowError, ModelInputError
from simulation_worker.model.memory import normal_pages
from tests.unit.model.conftest import network_folder

NETWORKS = ("SiouxFalls", "Winnipeg", "BerlinMPFC", "BerlinTiergarten", "BerlinFriedrichshain",
            "EasternMassachusetts")
FIELDS = ("link_from", "link_to", "capacity", "length", "free_flow_time", "bpr_b", "bpr_power",
          "speed_limit", "toll", "link_type", "link_rows")


@pytest.mark.parametrize("name", NETWORKS)
def test_links_and_trips_at_once_equal_row_by_row(name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    folder = network_folder(name)
    net, trips = next(folder.glob("*_net.tntp")), next(folder.glob("*_trips.tntp"))
    assert tntp._net_columns_at_once(tntp._read_sections(net)[1]) is not None
    fast_net = tntp.read_net(net)
    n, fast_trips = tntp.read_trips(trips)
    assert tntp._trips_at_once(tntp._read_sections(trips)[1], n) is not None
    monkeypatch.setattr(tntp, "_net_columns_at_once", lambda body, positions: None)
    monkeypatch.setattr(tntp, "_trips_at_once", lambda body, n: None)
    slow_net = tntp.read_net(net)
    assert np.array_equal(fast_trips, tntp.read_trips(trips)[1])
    for field in FIELDS:
        fast, slow = getattr(fast_net, field), getattr(slow_net, field)
        assert (fast == slow) if isinstance(fast, tuple) else np.array_equal(fast, slow), field


def _net(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "x_net.tntp"
    path.write_text("<NUMBER OF LINKS> 2\n<END OF METADATA>\n~ init term cap len fft b p\n"
                    + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("rows", [
    ["1 2 10 1 1 0.15 4 ;", "2 1 10 1 1 0.15 4 0 0 1 ;"],  # different widths
    ["1 2 10 1 1 0.15 4 ;", "2 1 10 1 nan 0.15 4 ;"],      # not finite
    ["1 2 10 1 1 0.15 4 ;", "2.5 1 10 1 1 0.15 4 ;"],      # fractional node id
    ["1 2 10 1 1 0.15 4 ;", "2 1 ten 1 1 0.15 4 ;"],       # not a number
])
def test_irregular_link_rows_go_row_by_row(tmp_path: Path, rows: list[str]) -> None:
    body = tntp._read_sections(_net(tmp_path, rows))[1]
    assert tntp._net_columns_at_once(body) is None


def test_trips_with_a_bad_cell_go_row_by_row(tmp_path: Path) -> None:
    path = tmp_path / "x_trips.tntp"
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 1 : 0.0; 2 : -3.0;\n")
    body = tntp._read_sections(path)[1]
    assert tntp._trips_at_once(body, 2) is None
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 1 : 0.0; 2 : 3.0;\n"
                    "Origin 2\n 1 : 4.5; 2 : 0;\n")
    trips = tntp._trips_at_once(tntp._read_sections(path)[1], 2)
    assert trips is not None and np.array_equal(trips, [[0.0, 3.0], [4.5, 0.0]])
    # A cell split over two lines is refused as the row-by-row reader refuses it.
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 1 : 0.0; 2 :\n 3.0;\n")
    assert tntp._trips_at_once(tntp._read_sections(path)[1], 2) is None
    with pytest.raises(MalformedRowError):
        tntp.read_trips(path)


def test_normal_pages_restores_numpys_setting() -> None:
    switch = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
    assert switch is not None  # the NumPy this project installs has it (decision 0132)
    before = switch(True)
    try:
        with normal_pages():
            assert switch(False) is False  # off inside
        assert switch(True) is True  # back on after
    finally:
        switch(before)


@pytest.mark.parametrize(("text", "at_once", "value"), [
    ("Origin 1\n 2 : +3.0;\nOrigin 2\n 1 : 1;\n", False, 3.0),  # a sign: only float() reads it
    ("Origin 1\n 2 : 1_000;\nOrigin 2\n 1 : 1;\n", False, 1000.0),  # an underscore: likewise
    ("Origin 1\n \u0662 : 3.0;\nOrigin 2\n 1 : 1;\n", False, 3.0),  # an Arabic-Indic two
    ("Origins 1\n 2 : 3.0;\nOrigin 2\n 1 : 1;\n", False, 3.0),  # the row reader's startswith
    ("Origin\t1\n2:3.0 ;\n Origin 2 \n1:1\n", True, 3.0),  # tabs, no ';', spaced origin
])
def test_what_only_the_row_reader_reads_gives_the_same_matrix(
        tmp_path: Path, text: str, at_once: bool, value: float) -> None:
    path = tmp_path / "x_trips.tntp"
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\n" + text)
    assert (tntp._trips_at_once(tntp._read_sections(path)[1], 2) is not None) == at_once
    trips = tntp.read_trips(path)[1]
    assert np.array_equal(trips, [[0.0, value], [1.0, 0.0]])


@pytest.mark.parametrize("cells", [
    "2 : 1e400;",       # overflows to inf
    "3 : 1.0;",         # no zone 3
    "0 : 1.0;",         # no zone 0
    "2 : 1.0; junk",    # not a cell
    "2 : 1.0: 4;",      # two colons
    "2 1.0;",           # no colon
])
def test_what_is_not_plainly_valid_goes_row_by_row(tmp_path: Path, cells: str) -> None:
    path = tmp_path / "x_trips.tntp"
    path.write_text(f"<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n {cells}\n")
    assert tntp._trips_at_once(tntp._read_sections(path)[1], 2) is None
    with pytest.raises(ModelInputError):
        tntp.read_trips(path)


def test_an_origin_given_twice_adds_up_and_values_before_an_origin_are_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "x_trips.tntp"
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 2 : 1.5;\n"
                    "Origin 2\n 1 : 1;\nOrigin 1\n 2 : 2.5; 2 : 1;\n")
    assert np.array_equal(tntp._trips_at_once(tntp._read_sections(path)[1], 2),
                          [[0.0, 5.0], [1.0, 0.0]])
    path.write_text("<NUMBER OF ZONES> 2\n<END OF METADATA>\n 2 : 1.5;\nOrigin 1\n 2 : 1;\n")
    assert tntp._trips_at_once(tntp._read_sections(path)[1], 2) is None
    with pytest.raises(MalformedRowError, match="before any 'Origin' line"):
        tntp.read_trips(path)
