"""A ``_net`` file's ``~`` header places speed, toll and link type when it names other columns
there (Sydney's and Gold Coast's ``speed critical_speed lanes``); the model's reader and the
dataset importer read the same columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.tntp_import import parse_tntp
from simulation_worker.model import tntp
from simulation_worker.model.errors import MalformedRowError

STANDARD = "~ init_node term_node capacity length free_flow_time b power speed toll link_type ;"
ROWS = ["1 2 100 1.5 3 0.15 4 50 7 2 ;", "2 1 100 1.5 3 0.15 4 60 8 3 ;"]
TRIPS = "<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 2 : 10;\nOrigin 2\n 1 : 5;\n"


def _read(tmp_path: Path, header: str, rows: list[str], *, fast: bool = True,
          monkeypatch: pytest.MonkeyPatch | None = None) -> tntp.Network:
    path = tmp_path / "x_net.tntp"
    path.write_text("<NUMBER OF NODES> 2\n<NUMBER OF LINKS> 2\n<END OF METADATA>\n\n"
                    + header + "\n" + "\n".join(rows) + "\n")
    if not fast and monkeypatch is not None:
        monkeypatch.setattr(tntp, "_net_columns_at_once", lambda body, positions: None)
    return tntp.read_net(path)


def _api_links(header: str, rows: list[str]) -> list[tuple[float, int]]:
    net = ("<NUMBER OF NODES> 2\n<NUMBER OF LINKS> 2\n<END OF METADATA>\n\n" + header + "\n"
           + "\n".join(rows) + "\n")
    network, problems = parse_tntp(net, TRIPS, None, 1000)
    assert network is not None, problems
    return [(link.toll, link.link_type) for link in network.links]


CASES = [
    # (header, speed, toll, type) for the two rows
    (STANDARD, [50, 60], [7, 8], [2, 3]),
    ("~ init_node term_node capacity length free_flow_time b power speed critical_speed lanes ;",
     [50, 60], [0, 0], [1, 1]),
    ("~ init_node term_node capacity length free_flow_time b power speed link_type toll ;",
     [50, 60], [2, 3], [7, 8]),
    ("~ init_node term_node capacity length free_flow_time b power toll speed type ;",
     [7, 8], [50, 60], [2, 3]),
    ("~ init_node term_node capacity length free_flow_time b power speed toll ;",  # Hessen's
     [50, 60], [7, 8], [2, 3]),
    ("~ a free text comment, not a header", [50, 60], [7, 8], [2, 3]),
    ("", [50, 60], [7, 8], [2, 3]),  # no header at all
]


@pytest.mark.parametrize(("header", "speed", "toll", "kind"), CASES)
@pytest.mark.parametrize("fast", [True, False])
def test_the_header_places_speed_toll_and_type(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str, speed: list[float],
        toll: list[float], kind: list[int], fast: bool) -> None:
    net = _read(tmp_path, header, ROWS, fast=fast, monkeypatch=monkeypatch)
    assert np.array_equal(net.speed_limit, speed)
    assert np.array_equal(net.toll, toll)
    assert np.array_equal(net.link_type, kind)
    assert _api_links(header, ROWS) == list(zip(toll, kind, strict=True))


def test_a_named_link_type_must_be_an_integer_wherever_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    header = "~ init_node term_node capacity length free_flow_time b power speed type toll ;"
    rows = ["1 2 100 1.5 3 0.15 4 50 2.5 7 ;", "2 1 100 1.5 3 0.15 4 60 3 8 ;"]
    with pytest.raises(MalformedRowError, match=r"line 6: type '2.5' is not an integer"):
        _read(tmp_path, header, rows)
    # A column the reader does not use may hold any number, but a number.
    sydney = ("~ init_node term_node capacity length free_flow_time b power speed "
              "critical_speed lanes ;")
    fine = ["1 2 100 1.5 3 0.15 4 50 19.2 2.5 ;", "2 1 100 1.5 3 0.15 4 60 19.2 2 ;"]
    assert np.array_equal(_read(tmp_path, sydney, fine).link_type, [1, 1])
    broken = ["1 2 100 1.5 3 0.15 4 50 fast 2 ;", "2 1 100 1.5 3 0.15 4 60 19.2 2 ;"]
    with pytest.raises(MalformedRowError, match="line 6: field 9 'fast' is not a number"):
        _read(tmp_path, sydney, broken)
    net = ("<NUMBER OF NODES> 2\n<END OF METADATA>\n" + sydney + "\n" + "\n".join(broken))
    network, problems = parse_tntp(net, TRIPS, None, 1000)
    assert network is None and problems == ["net line 4: field 9 'fast' is not a number"]
