"""`cartolog log export` and `log import` beside pg_dump and pg_restore of the same tables.

The log is the mixed workload of bench/replay.py (three cities importing Sioux Falls,
forking and editing scenarios, running them with result documents stored as claim-check
blobs), written once into a database of its own. Then, in the same run, RUNS times each
(default 3, the sides interleaved, medians reported):

- **export**: what `cartolog log export FILE` does (`adapters.backup.export_log`: every
  event and blob as checksummed JSON Lines), beside `pg_dump --format=custom` of the same
  two tables (`cartolog_events`, `blobs`): plain (`FILE`, `--compress=0`) and compressed
  (`FILE.gz`, pg_dump's default compression).
- **import**: what `cartolog log import FILE` does (`adapters.backup.import_log`: verify the
  whole file, then restore it in one transaction), beside `pg_restore --data-only` of the
  plain dump. Each run restores into a fresh, migrated, empty database (not timed).

Rates are stored events / wall time (the blobs travel too, on both sides).

    .venv/bin/python -m bench.backup [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from adapters.backup import export_log, import_log
from adapters.eventstore import EVENTS_TABLE
from bench.common import bench_database, figure, report
from bench.replay import mixed_log
from infra.settings import Settings
from infra.wiring import build

TABLES = (EVENTS_TABLE, "blobs")


def libpq_url(sqlalchemy_url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore take it."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def pg_dump(url: str, path: Path, compress: bool) -> None:
    tables = [arg for table in TABLES for arg in ("--table", table)]
    level = [] if compress else ["--compress=0"]
    subprocess.run(["pg_dump", "--format=custom", *level, *tables, "--file", str(path),
                    libpq_url(url)], check=True)


def pg_restore(url: str, path: Path) -> None:
    subprocess.run(["pg_restore", "--data-only", "--single-transaction", "--dbname",
                    libpq_url(url), str(path)], check=True)


def cartolog_import(url: str, path: Path) -> None:
    engine = create_engine(url)
    try:
        import_log(engine, path)
    finally:
        engine.dispose()


def restore_timed(restore: Callable[[str], Any]) -> float:
    """Seconds `restore` takes on a fresh, migrated database (created and dropped untimed)."""
    with bench_database("bench_restore") as url:
        return timed(lambda: restore(url))


def measure(source_url: str, files: dict[str, Path], runs: int) -> dict[str, list[float]]:
    """Seconds per run of each side."""
    engine = create_engine(source_url)
    sides: dict[str, Callable[[], float]] = {
        "export": lambda: timed(lambda: export_log(engine, files["export"])),
        "pg_dump": lambda: timed(lambda: pg_dump(source_url, files["dump"], False)),
        "export_gz": lambda: timed(lambda: export_log(engine, files["export_gz"])),
        "pg_dump_z": lambda: timed(lambda: pg_dump(source_url, files["dump_z"], True)),
        "import": lambda: restore_timed(lambda url: cartolog_import(url, files["export"])),
        "pg_restore": lambda: restore_timed(lambda url: pg_restore(url, files["dump"])),
    }
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for _ in range(runs):
            for name, side in sides.items():
                seconds[name].append(side())
    finally:
        engine.dispose()
    return seconds


def figures(events: int, seconds: dict[str, list[float]], files: dict[str, Path]
            ) -> list[dict[str, Any]]:
    def rate(name: str) -> float:
        return events / median(seconds[name])

    def size(key: str) -> int:
        return files[key].stat().st_size

    return [
        figure("export", rate("export"), "events/s", "pg_dump -Fc -Z0 (same tables)",
               rate("pg_dump"), file_bytes=size("export"), baseline_file_bytes=size("dump")),
        figure("export_gzip", rate("export_gz"), "events/s", "pg_dump -Fc (compressed)",
               rate("pg_dump_z"), file_bytes=size("export_gz"),
               baseline_file_bytes=size("dump_z")),
        figure("import", rate("import"), "events/s", "pg_restore --data-only",
               rate("pg_restore")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller log")
    parser.add_argument("--runs", type=int, default=3, help="runs per side (median reported)")
    args = parser.parse_args()
    with bench_database("bench_backup") as url, tempfile.TemporaryDirectory() as tmp:
        container = build(Settings(database_url=url))
        with contextlib.closing(container):
            events = mixed_log(container, 3, 40 if args.quick else 200, 3)
        folder = Path(tmp)
        files = {"export": folder / "log.jsonl", "export_gz": folder / "log.jsonl.gz",
                 "dump": folder / "log.dump", "dump_z": folder / "log.dump.z"}
        seconds = measure(url, files, args.runs)
        report("backup", figures(events, seconds, files), events=events, runs=args.runs,
               seconds={name: [round(s, 3) for s in values] for name, values in seconds.items()})


if __name__ == "__main__":
    main()
