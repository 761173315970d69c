"""Reading a big TNTP trips file: the whole-text reader against the row-by-row reader.

A seeded city of ``--zones`` zones (default 1,500) with a trip on about 70 % of its OD pairs
is written as TransportationNetworks writes trips files (five ``destination :\\ttrips;``
cells a line). ``read_trips`` reads it a block per origin, checked by regular expressions and
split by ``str.split`` (``tntp._trips_at_once``); the baseline is the row-by-row reader every
file that is not plainly valid falls back to, which names the first bad row. Both sides read
the same file, alternating, median of ``--runs`` runs (default 3), and must give the same
matrix. The figure is seconds per million cells.

    .venv/bin/python -m bench.tntp_read [--zones N] [--runs N]

(2026-12-01: Sydney's 92 MB trips file, 3,264 zones and 7.3 million cells, read in 6.5 s;
the line-at-a-time reader before took 19 s.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import figure, report  # noqa: E402
from simulation_worker.model import tntp  # noqa: E402


def write_trips(path: Path, zones: int, seed: int = 7) -> int:
    """A TransportationNetworks-style trips file; the number of cells written."""
    rng = np.random.default_rng(seed)
    cells = 0
    with path.open("w") as out:
        out.write(f"<NUMBER OF ZONES> {zones}\n<END OF METADATA>\n\n")
        for origin in range(1, zones + 1):
            out.write(f"\nOrigin \t{origin}\n")
            row = np.round(rng.gamma(1.0, 20.0, zones), 2) * (rng.random(zones) < 0.7)
            used = np.flatnonzero(row)
            cells += len(used)
            for start in range(0, len(used), 5):
                out.write("".join(f"{d + 1:6d} :{row[d]:8.2f}; " for d in used[start:start + 5]))
                out.write("\n")
    return cells


def read_row_by_row(path: Path) -> np.ndarray:
    whole = tntp._trips_at_once
    tntp._trips_at_once = lambda body, n: None  # type: ignore[assignment]
    try:
        return tntp.read_trips(path)[1]
    finally:
        tntp._trips_at_once = whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "city_trips.tntp"
        cells = write_trips(path, args.zones)
        whole: list[float] = []
        rows: list[float] = []
        same = True
        for _ in range(args.runs):
            started = time.perf_counter()
            fast = tntp.read_trips(path)[1]
            whole.append(time.perf_counter() - started)
            started = time.perf_counter()
            slow = read_row_by_row(path)
            rows.append(time.perf_counter() - started)
            same = same and bool(np.array_equal(fast, slow))
        megabytes = path.stat().st_size / 1e6
    per_million = 1e6 / cells
    report("tntp_read", [
        figure(f"read {args.zones} zones' trips ({cells:,} cells, {megabytes:.0f} MB)",
               statistics.median(whole) * per_million, "s per million cells",
               "row-by-row reader", statistics.median(rows) * per_million,
               higher_is_better=False, seconds=round(statistics.median(whole), 3),
               baseline_seconds=round(statistics.median(rows), 3), same_matrix=same),
    ], runs=args.runs)


if __name__ == "__main__":
    main()
