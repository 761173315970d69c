"""Job leases in PostgreSQL: at most one worker computes a job attempt at a time.

Kafka's group gives each partition to one member, but a job can still reach two workers (a
rebalance while it runs, or a job re-sent after a broker loss). The lease decides: the
holder renews it while its model computes; anyone else waits (without blocking its poll loop)
until the run moves on or the lease expires, which means the holder died.
A finished attempt keeps its result message in the row, so a redelivered job re-sends that
result instead of computing again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from adapters.jobs_tables import job_leases

RUNNING, DONE = "running", "done"


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a lease: `claimed`, `held` (by `worker`) or `done`."""

    status: str
    worker: str | None = None
    result: dict[str, Any] | None = None


class LeaseStore:
    """Claim, renew, release and finish job leases; times are the database's clock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, run_id: uuid.UUID, attempt: int, tenant_id: str, worker: str,
              ttl_s: float) -> Claim:
        """Take the lease unless another live worker holds it or the attempt is done."""
        until = func.now() + text(f"interval '{float(ttl_s)} seconds'")
        values = insert(job_leases).values(
            run_id=run_id, attempt=attempt, tenant_id=tenant_id, worker=worker,
            state=RUNNING, lease_until=until)
        statement = values.on_conflict_do_update(
            index_elements=["run_id", "attempt"],
            set_={"worker": worker, "lease_until": until, "updated_at": func.now()},
            where=(job_leases.c.state == RUNNING) & (
                (job_leases.c.lease_until < func.now()) | (job_leases.c.worker == worker)),
        ).returning(job_leases.c.worker)
        with self.engine.begin() as connection:
            if connection.execute(statement).first() is not None:
                return Claim("claimed", worker)
            row = connection.execute(
                select(job_leases.c.state, job_leases.c.worker, job_leases.c.result).where(
                    job_leases.c.run_id == run_id, job_leases.c.attempt == attempt)).one()
        return Claim("done" if row.state == DONE else "held", row.worker, row.result)

    def renew(self, run_id: uuid.UUID, attempt: int, worker: str, ttl_s: float) -> bool:
        """Extend our lease; False if it is no longer ours."""
        return self._update(run_id, attempt, worker,
                            lease_until=func.now() + text(f"interval '{float(ttl_s)} seconds'"))

    def release(self, run_id: uuid.UUID, attempt: int, worker: str) -> bool:
        """Give the lease up now (the job goes back, uncommitted, to the group)."""
        return self._update(run_id, attempt, worker, lease_until=func.now())

    def finish(self, run_id: uuid.UUID, attempt: int, worker: str,
               result: dict[str, Any]) -> bool:
        """Mark the attempt done and keep the result message it produced."""
        return self._update(run_id, attempt, worker, state=DONE, result=result)

    def _update(self, run_id: uuid.UUID, attempt: int, worker: str, **values: Any) -> bool:
        statement = update(job_leases).where(
            job_leases.c.run_id == run_id, job_leases.c.attempt == attempt,
            job_leases.c.worker == worker, job_leases.c.state == RUNNING,
        ).values(updated_at=func.now(), **values)
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1
