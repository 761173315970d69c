"""Seeded random damage to a TNTP folder: the model's reader and the dataset importer each load
it or refuse it with their own error (a line naming the file), never another exception."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from api.tntp_import import parse_tntp
from simulation_worker.model import ModelInputError, load_tntp_folder
from tests.conftest import REPO

SIOUX_FALLS = REPO / "tests" / "data" / "networks" / "SiouxFalls"
# Values that once reached the reader as an overflow, a truncation, a huge allocation or a
# traceback (decision 0143's session), and plain garbage.
VALUES = ("0", "-1", "-0", "1e308", "1e-308", "5e-324", "nan", "inf", "-inf", "1e400", "",
          "abc", "1e30", "3.5", "2147483648", "99999999999999999999", "1000000", "0x10")
TAGS = ("NUMBER OF NODES", "NUMBER OF ZONES", "FIRST THRU NODE")
TRIP_CELL = re.compile(r"(?<=\s)[^\s:;]+(?=\s*:)|(?<=:)\s*[^;\s]+")


def damaged(seed: int) -> tuple[str, str, list[str]]:
    """Sioux Falls' net and trips texts with one to three cells or header tags replaced."""
    rng = random.Random(seed)
    net = (SIOUX_FALLS / "SiouxFalls_net.tntp").read_text().splitlines()
    trips = (SIOUX_FALLS / "SiouxFalls_trips.tntp").read_text()
    body = next(i for i, line in enumerate(net) if line.strip().startswith("~")) + 1
    done: list[str] = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        value = rng.choice(VALUES)
        where = rng.random()
        if where < 0.5:
            row = rng.randrange(body, len(net))
            cells = net[row].split("\t")
            column = rng.choice([i for i, c in enumerate(cells) if c.strip() not in ("", ";")])
            cells[column] = value
            net[row] = "\t".join(cells)
            done.append(f"net line {row + 1} field {column}: {value!r}")
        elif where < 0.8:
            start, stop = rng.choice([m.span() for m in TRIP_CELL.finditer(trips)])
            trips = f"{trips[:start]} {value}{trips[stop:]}"
            done.append(f"trips cell at {start}: {value!r}")
        else:
            tag = rng.choice(TAGS)
            pattern = re.compile(rf"<{tag}>[^\n]*")
            replacement = f"<{tag}> {value}"
            if tag == "NUMBER OF ZONES":
                trips = pattern.sub(replacement, trips)
            else:
                net = pattern.sub(replacement, "\n".join(net)).splitlines()
            done.append(f"<{tag}> {value!r}")
    return "\n".join(net) + "\n", trips, done


@pytest.mark.parametrize("seed", range(80))
def test_damaged_tntp_is_loaded_or_refused_with_its_own_error(tmp_path: Path,
                                                              seed: int) -> None:
    net, trips, damage = damaged(seed)
    (tmp_path / "SiouxFalls_net.tntp").write_text(net)
    (tmp_path / "SiouxFalls_trips.tntp").write_text(trips)
    try:
        case = load_tntp_folder(tmp_path)
    except ModelInputError as error:
        assert "\n" not in str(error) and str(error), damage
        model_refused = True
    else:
        assert case.network.n_links == 76 and case.trips.shape[0] <= case.network.n_nodes
        model_refused = False
    network, problems = parse_tntp(net, trips, None, 200_000)
    assert (network is None) == bool(problems), damage
    assert all(p and "\n" not in p for p in problems), damage
    # The dataset endpoint (the reader, then the domain's rules) never takes what the model
    # would refuse to run: it may only be stricter (the domain bounds magnitudes at 1e12).
    if model_refused:
        assert network is None or network.problems(), damage
