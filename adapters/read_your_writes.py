"""Read-your-writes: wait until a projection applied a version of an aggregate.

Small on purpose: the API imports it without the projector (Kafka, COPY, replay)."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, text

_APPLIED = text("SELECT version FROM projection_versions WHERE projection = :projection "
                "AND aggregate_id = CAST(:aggregate AS uuid)")


def wait_for_version(engine: Engine, projection: str, aggregate_id: uuid.UUID | str,
                     version: int, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """True when `projection` applied `version` of the aggregate within `timeout` seconds,
    False otherwise (the caller decides whether to answer with stale data or 503)."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            found = connection.execute(_APPLIED, {"projection": projection,
                                                  "aggregate": str(aggregate_id)}).scalar()
        if found is not None and int(found) >= version:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
