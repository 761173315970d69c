"""Fair job release: which jobs go to Kafka next, and to which worker (decision 0310).

Jobs wait in `simulation_job_outbox`, not in the jobs topic. Workers report in
`simulation_workers` which jobs-topic partitions they hold and whether they are computing;
the dispatcher sends a job only to a partition of a worker that is free (alive, idle, and
with no job in flight on its partitions), so a job is never queued behind another in Kafka.
Which job goes next is decided here:

- tenants are served fewest-jobs-in-flight first, so one tenant's hundred queued runs delay
  another tenant's first run by at most one job per busy worker;
- within a tenant, and between equal tenants, the earliest due job first (request order;
  a retry counts from the end of its back-off);
- a job whose worker died (its lease expired while running) is sent again ahead of every
  waiting job; whichever copy a worker claims first runs, the other finds the lease taken.
"""

from __future__ import annotations

import heapq
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from adapters.jobs_tables import job_leases, job_outbox, job_workers

JOB = "job"
RECENT_DURATIONS = 20  # finished attempts averaged for the expected start time
LIVENESS_S = 3.0  # a worker not seen for this long is taken for dead
NOTIFY_CHANNEL = "cartolog_jobs"  # a job was queued or a worker turned idle (decision 0313)


def notify(connection: Connection, topic: str, channel: str = NOTIFY_CHANNEL) -> None:
    """Wake the dispatcher's release loop when `connection`'s transaction commits."""
    connection.execute(text("SELECT pg_notify(:channel, :payload)"),
                       {"channel": channel, "payload": topic})


def listen(engine: Engine, channel: str = NOTIFY_CHANNEL) -> Any:
    """A raw psycopg2 connection LISTENing on `channel` (close it when done)."""
    pooled: Any = engine.raw_connection()
    connection = pooled.dbapi_connection
    pooled.detach()  # autocommit must not leak back into the pool: this one closes for real
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {channel}")
    return connection


@dataclass(frozen=True)
class Waiting:
    """A job row not yet sent (`resent`: sent before, and its worker died)."""

    run_id: uuid.UUID
    attempt: int
    tenant_id: str
    not_before: datetime
    created_at: datetime
    resent: bool = False

    @property
    def order(self) -> tuple[datetime, datetime]:
        """Request order: due time, then creation."""
        return self.not_before, self.created_at


@dataclass(frozen=True)
class FreeWorker:
    """A worker that may be given a job now, on `partition`."""

    name: str
    partition: int


@dataclass(frozen=True)
class Estimate:
    """Where a waiting run stands: jobs released before it, and when it should start
    (unknown until a job has finished to take its duration from)."""

    position: int
    expected_start_at: datetime | None


def fair_order(waiting: Iterable[Waiting], in_flight: Counter[str]) -> Iterator[Waiting]:
    """Waiting jobs in release order: jobs taken over from dead workers, then fewest in
    flight per tenant first, then request order."""
    queues: dict[str, list[Waiting]] = {}
    served = Counter(in_flight)
    for row in sorted(waiting, key=lambda r: (not r.resent, r.order)):
        if row.resent:
            served[row.tenant_id] += 1
            yield row
        else:
            queues.setdefault(row.tenant_id, []).append(row)
    heap = [(served[t], rows[0].order, t, 0) for t, rows in queues.items()]
    heapq.heapify(heap)
    while heap:
        _, _, tenant, index = heapq.heappop(heap)
        yield queues[tenant][index]
        served[tenant] += 1
        if index + 1 < len(queues[tenant]):
            following = queues[tenant][index + 1]
            heapq.heappush(heap, (served[tenant], following.order, tenant, index + 1))


class WorkerRegistry:
    """A worker's row in `simulation_workers`: its partitions, busy or idle, last seen."""

    def __init__(self, engine: Engine, topic: str, name: str,
                 liveness_s: float = LIVENESS_S) -> None:
        self.engine, self.topic, self.name = engine, topic, name
        self.liveness_s = liveness_s
        self._reported: tuple[list[int], bool] | None = None

    def beat(self, partitions: Iterable[int], busy: bool) -> None:
        """Report the partitions held now and whether a job is in hand; a change wakes the
        dispatcher (it may have a job for this worker now)."""
        held = sorted(partitions)
        changed = self._reported != (held, busy)
        statement = insert(job_workers).values(
            name=self.name, topic=self.topic, partitions=held, busy=busy, seen_at=func.now(),
        ).on_conflict_do_update(index_elements=["name"], set_={
            "partitions": held, "busy": busy, "seen_at": func.now(), "topic": self.topic})
        with self.engine.begin() as connection:
            connection.execute(statement)
            if changed:
                notify(connection, self.topic)
        self._reported = (held, busy)

    def alive(self, name: str) -> bool:
        """Whether the worker `name` was seen within the liveness window."""
        query = select(job_workers.c.name).where(
            job_workers.c.name == name, job_workers.c.seen_at > _liveness(self.liveness_s))
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def consumed(self, run_id: uuid.UUID, attempt: int) -> None:
        """The job message of (run, attempt) is committed: it is no longer in flight."""
        mark_consumed(self.engine, run_id, max_attempt=attempt, exact=True)

    def leave(self) -> None:
        """A clean exit: the worker is gone at once, not after the liveness window."""
        with self.engine.begin() as connection:
            connection.execute(job_workers.delete().where(job_workers.c.name == self.name))


def _liveness(seconds: float) -> ColumnElement[datetime]:
    return func.now() - text(f"interval '{float(seconds)} seconds'")


def mark_consumed(engine: Engine, run_id: uuid.UUID, max_attempt: int | None = None,
                  exact: bool = False) -> None:
    """Take a run's sent jobs (one attempt, or every attempt up to one) out of flight."""
    condition = and_(job_outbox.c.kind == JOB, job_outbox.c.run_id == run_id,
                     job_outbox.c.published_at.is_not(None), job_outbox.c.consumed_at.is_(None))
    if max_attempt is not None:
        condition = and_(condition, job_outbox.c.attempt == max_attempt if exact
                         else job_outbox.c.attempt <= max_attempt)
    with engine.begin() as connection:
        connection.execute(update(job_outbox).where(condition).values(consumed_at=func.now()))


@dataclass(frozen=True)
class _Snapshot:
    """The queue as `estimate` reads it, shared by the requests of `ESTIMATE_TTL_S`."""

    taken: float  # time.monotonic()
    now: datetime  # the database's clock then
    positions: dict[uuid.UUID, tuple[int, datetime]]  # run → (position, due)
    in_flight: int
    workers: int
    mean_s: float | None


ESTIMATE_TTL_S = 0.25


class JobQueue:
    """The dispatcher's view: free workers, the next jobs, a waiting run's estimate."""

    def __init__(self, engine: Engine, topic: str, liveness_s: float = LIVENESS_S,
                 estimate_ttl_s: float = ESTIMATE_TTL_S) -> None:
        self.engine, self.topic, self.liveness_s = engine, topic, liveness_s
        self.estimate_ttl_s = estimate_ttl_s
        self._snapshot: _Snapshot | None = None
        self._snapshot_lock = threading.Lock()

    def free_workers(self) -> list[FreeWorker]:
        """Live, idle workers with no job waiting for them on their partitions."""
        workers = self._live_workers()
        blocked = self._blocked_partitions({name for name, _, _ in workers})
        return [FreeWorker(name, min(partitions)) for name, partitions, busy in workers
                if partitions and not busy and not blocked & set(partitions)]

    def claimed(self, run_id: uuid.UUID, attempt: int) -> bool:
        """Whether a worker holds a live lease on the attempt or has finished it."""
        query = select(job_leases.c.state).where(
            job_leases.c.run_id == run_id, job_leases.c.attempt == attempt,
            (job_leases.c.state == "done") | (job_leases.c.lease_until > func.now()))
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def orphans(self) -> list[tuple[uuid.UUID, int]]:
        """(run, attempt) of sent jobs whose worker died while running them: the lease ran
        out after the job was last sent, and the worker's process is no longer seen (a live
        worker that was slow to renew keeps its job)."""
        live = {name for name, _, _ in self._live_workers()}
        query = select(job_outbox.c.run_id, job_outbox.c.attempt, job_leases.c.worker).join(
            job_leases, (job_leases.c.run_id == job_outbox.c.run_id)
            & (job_leases.c.attempt == job_outbox.c.attempt)).where(
            job_outbox.c.kind == JOB, job_outbox.c.topic == self.topic,
            job_outbox.c.published_at.is_not(None),
            job_leases.c.state == "running", job_leases.c.lease_until < func.now(),
            job_outbox.c.published_at < job_leases.c.lease_until)
        with self.engine.connect() as connection:
            return [(r.run_id, r.attempt) for r in connection.execute(query)
                    if r.worker not in live]

    def next_jobs(self, count: int) -> list[Waiting]:
        """The `count` due jobs to release next, in fair order."""
        if count <= 0:
            return []
        heads = self._waiting(due_only=True, per_tenant=count)
        order = fair_order(heads, self._in_flight_by_tenant())
        return [row for row, _ in zip(order, range(count), strict=False)]

    def estimate(self, run_id: uuid.UUID) -> Estimate | None:
        """Position and expected start of a run whose job is waiting; None if it is not.

        Read from a snapshot of the whole queue taken at most `estimate_ttl_s` ago: every
        client polling its runs would otherwise cost five queries per request."""
        snapshot = self._fresh_snapshot()
        found = snapshot.positions.get(run_id)
        if found is None:
            return None
        position, due = found
        now = snapshot.now + timedelta(seconds=time.monotonic() - snapshot.taken)
        ahead = snapshot.in_flight + position
        workers = snapshot.workers
        waves = 0 if ahead < workers else (ahead - workers) // workers + 1
        if snapshot.mean_s is None:
            return Estimate(position, None if waves else max(now, due))
        return Estimate(position, max(now + timedelta(seconds=waves * snapshot.mean_s), due))

    def _fresh_snapshot(self) -> _Snapshot:
        with self._snapshot_lock:
            snapshot = self._snapshot
            if snapshot is None or time.monotonic() - snapshot.taken > self.estimate_ttl_s:
                waiting = self._waiting(due_only=False)
                in_flight = self._in_flight_by_tenant()
                positions = {row.run_id: (index, row.not_before)
                             for index, row in enumerate(fair_order(waiting, in_flight))}
                snapshot = self._snapshot = _Snapshot(
                    time.monotonic(), self._now(), positions, sum(in_flight.values()),
                    max(1, len(self._live_workers())), self._mean_duration_s())
            return snapshot

    def _live_workers(self) -> list[tuple[str, Sequence[int], bool]]:
        query = select(job_workers.c.name, job_workers.c.partitions, job_workers.c.busy).where(
            job_workers.c.topic == self.topic,
            job_workers.c.seen_at > _liveness(self.liveness_s),
        ).order_by(job_workers.c.name)
        with self.engine.connect() as connection:
            return [(r.name, r.partitions, r.busy) for r in connection.execute(query)]

    def _in_flight(self) -> ColumnElement[bool]:
        return (job_outbox.c.kind == JOB) & (job_outbox.c.topic == self.topic) & \
            job_outbox.c.published_at.is_not(None) & job_outbox.c.consumed_at.is_(None)

    def _blocked_partitions(self, live: set[str]) -> set[int]:
        """Partitions holding a sent job that their owner will have to run: not yet claimed,
        or claimed by a worker that is gone (a job a live worker computes is skipped)."""
        query = select(job_outbox.c.partition, job_leases.c.state, job_leases.c.worker).join(
            job_leases, (job_leases.c.run_id == job_outbox.c.run_id)
            & (job_leases.c.attempt == job_outbox.c.attempt), isouter=True).where(
            self._in_flight())
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {int(r.partition) for r in rows if r.partition is not None and (
            r.state is None or (r.state == "running" and r.worker not in live))}

    def _in_flight_by_tenant(self) -> Counter[str]:
        query = select(job_outbox.c.tenant_id, func.count()).where(
            self._in_flight()).group_by(job_outbox.c.tenant_id)
        with self.engine.connect() as connection:
            return Counter({t: int(n) for t, n in connection.execute(query)})

    def _waiting(self, due_only: bool, per_tenant: int | None = None) -> list[Waiting]:
        condition = (job_outbox.c.kind == JOB) & (job_outbox.c.topic == self.topic) & \
            job_outbox.c.published_at.is_(None)
        if due_only:
            condition = condition & (job_outbox.c.not_before <= func.now())
        rank = func.row_number().over(
            partition_by=job_outbox.c.tenant_id,
            order_by=(job_outbox.c.not_before, job_outbox.c.created_at)).label("rank")
        inner = select(job_outbox.c.run_id, job_outbox.c.attempt, job_outbox.c.tenant_id,
                       job_outbox.c.not_before, job_outbox.c.created_at,
                       job_outbox.c.partition, rank).where(
            condition).subquery()
        query = select(inner)
        if per_tenant is not None:
            query = query.where(inner.c.rank <= per_tenant)
        with self.engine.connect() as connection:
            return [Waiting(r.run_id, r.attempt, r.tenant_id, r.not_before, r.created_at,
                            r.partition is not None) for r in connection.execute(query)]

    def _mean_duration_s(self) -> float | None:
        recent = select(job_leases.c.result["duration_s"].as_float().label("d")).where(
            job_leases.c.state == "done").order_by(job_leases.c.updated_at.desc()).limit(
            RECENT_DURATIONS).subquery()
        with self.engine.connect() as connection:
            mean = connection.execute(select(func.avg(recent.c.d))).scalar()
        return None if mean is None else float(mean)

    def _now(self) -> datetime:
        with self.engine.connect() as connection:
            now: datetime = connection.execute(select(func.now())).scalar_one()
        return now
