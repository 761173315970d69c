"""Shared bench plumbing: own database, own broker, JSON report (docs/notes/bench.md format)."""

from __future__ import annotations

import json
import os
import statistics
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters.schema import ensure_database, migrate
from infra.settings import DEFAULT_DATABASE_URL


@contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """A fresh, migrated database, dropped afterwards."""
    base = make_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    url = base.set(database=f"{prefix}_{uuid.uuid4().hex[:8]}").render_as_string(
        hide_password=False)
    ensure_database(url)
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        admin = create_engine(make_url(url).set(database="postgres"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            name = make_url(url).database
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """Median of `runs` measurements."""
    return statistics.median(measure() for _ in range(runs))


def figure(name: str, value: float, unit: str, baseline: str, baseline_value: float,
           higher_is_better: bool = True, **extra: Any) -> dict[str, Any]:
    """One entry of the report's `figures`."""
    return {"name": name, "value": round(value, 3), "unit": unit, "baseline": baseline,
            "baseline_value": round(baseline_value, 3),
            "ratio": round(value / baseline_value, 3) if baseline_value else None,
            "higher_is_better": higher_is_better, **extra}


def report(bench: str, figures: list[dict[str, Any]], **extra: Any) -> None:
    """Print the report as the last line of stdout."""
    print(json.dumps({"bench": bench, "figures": figures, **extra}))
