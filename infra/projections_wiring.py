"""Wiring of the projector, rebuilds and the BI sync manager (functions of a Container)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import MetaData, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from adapters.bi_connectors import (
    BiSyncManager,
    BuiltinConnector,
    Connector,
    HostPolicy,
    HttpConnector,
)
from adapters.envelope import encode, envelope
from adapters.kafka import high_watermarks
from adapters.projector.consumer import make_consumer
from adapters.projector.ddl import ensure_tables, table_ddl
from adapters.projector.live import Projector
from adapters.projector.queries import absorbed, skipped_events
from adapters.projector.rebuild import Progress, Rebuild
from adapters.projector.retry import RetryOutcome, retry
from adapters.projector.runner import ProjectionRunner
from adapters.store_replay import stored_events
from adapters.tables import metadata
from domain.bi import BUILTIN, EXTERNAL
from infra.wiring import Container
from projections.base import Context, Event, Projection
from projections.jsonparse import loads
from projections.read_model import ReadModel
from projections.registry import projection_classes, projections

log = logging.getLogger(__name__)


def context(container: Container) -> Context:
    """What projections may use: the blob store."""
    return Context(blobs=container.blobs)


def all_projections(container: Container, names: list[str] | None = None) -> list[Projection]:
    """Built-in and registered projections (all by default)."""
    return projections(context(container), names)


def projection_names() -> list[str]:
    """Every known projection name."""
    return list(projection_classes())


def group_id(container: Container) -> str:
    """The projector's consumer group (used for partition assignment only)."""
    return f"{container.settings.topic_prefix}.projector"


def projector(container: Container, names: list[str] | None = None) -> Projector:
    """The live projector loop over every projection."""
    chosen = all_projections(container, names)
    ensure_tables(container.engine, chosen)
    runners = [ProjectionRunner(container.engine, p) for p in chosen]
    servers = container.bootstrap_servers
    return Projector(runners, lambda: make_consumer(servers, group_id(container)),
                     container.settings.events_topic, container.settings.projector.batch)


@dataclass
class ProjectorProcess:
    """`cartolog projector`: the projector loop and, beside it, the live BI sync manager."""

    projector: Projector
    bi_manager: BiSyncManager | None

    def run(self) -> None:
        """Run both until stop()."""
        thread = None
        if self.bi_manager is not None:
            thread = threading.Thread(target=self.bi_manager.run, name="bi-sync", daemon=True)
            thread.start()
        try:
            self.projector.run()
        finally:
            if self.bi_manager is not None:
                self.bi_manager.stop()
            if thread is not None:
                thread.join(30)

    def stop(self) -> None:
        """Finish the current batch and return."""
        self.projector.stop()
        if self.bi_manager is not None:
            self.bi_manager.stop()


def projector_process(container: Container, with_bi_sync: bool = True) -> ProjectorProcess:
    """The object `cartolog projector` and `cartolog up` run."""
    interval = container.settings.projector.bi_interval_s
    manager = bi_manager(container, interval) if with_bi_sync else None
    return ProjectorProcess(projector(container), manager)


def table_ddl_for(name: str, schema: str) -> list[str]:
    """DDL of a built-in read-model table in another schema (same columns and indexes)."""
    if name not in metadata.tables:
        return [f'CREATE TABLE "{schema}"."{name}" (LIKE public."{name}" INCLUDING ALL)']
    copy = metadata.tables[name].to_metadata(MetaData(), schema=schema)
    statements = [str(CreateTable(copy).compile(dialect=_dialect()))]
    statements += [str(CreateIndex(index).compile(dialect=_dialect()))
                   for index in sorted(copy.indexes, key=lambda i: str(i.name))]
    return statements


def _dialect() -> Dialect:
    return postgresql.dialect()  # type: ignore[no-untyped-call]


def rebuild(container: Container, name: str, source: str = "auto",
            progress: Progress | None = None, batch: int = 5000) -> tuple[int, str]:
    """Rebuild one projection from the log into fresh tables, then swap; (events, source).

    `auto` and `store` replay the store, the system of record: complete by construction
    and the fastest source (decision 0204). `kafka` replays the events topic from offset
    zero and fails when the broker no longer holds the whole log."""
    if source not in ("auto", "store", "kafka"):
        raise ValueError(f"unknown source {source!r}: auto, store or kafka")
    (projection,) = all_projections(container, [name])
    job = Rebuild(container.engine, projection, _ddl(projection))
    with job.exclusive():
        return _rebuild(container, job, source, progress, batch)


def _rebuild(container: Container, job: Rebuild, source: str, progress: Progress | None,
             batch: int) -> tuple[int, str]:
    topic = container.settings.events_topic
    live = job.live_offsets(topic)  # before the head: every record below is in the store
    head = container.reader().head()
    job.prepare()
    if source == "kafka":
        with _consumer(container) as consumer:
            applied = job.replay_topic(consumer, topic, progress)
        if not job.absorbed(head):
            job.discard()
            raise RuntimeError("the broker does not hold the whole log; use --source store")
        job.swap()
        return applied, "kafka"
    applied = job.replay_store(lambda: _stored_batches(container, head, batch), head, progress)
    beginnings, ends = _bounds(container)
    job.track_from(topic, resume_offsets(live, beginnings, ends), ends)
    job.swap()
    return applied, "store"


def resume_offsets(live: dict[int, int], beginnings: dict[int, int], ends: dict[int, int]
                   ) -> dict[int, int]:
    """Where the live projector goes on after a store rebuild, per partition: where the live
    tracking was before the rebuild read the store head (every record below it was stored
    by then, so the rebuild has it), else from the start of the partition. A tracked offset
    beyond the partition's end (a broker that lost its log) also goes back to the start;
    the live projector skips, by (aggregate id, version), what the store already gave."""
    resumed = {}
    for partition, beginning in beginnings.items():
        tracked = live.get(partition)
        end = ends.get(partition, beginning)
        fits = tracked is not None and beginning <= tracked <= end
        resumed[partition] = tracked if fits and tracked is not None else beginning
    return resumed


def _ddl(projection: Projection) -> Callable[[str, str], list[str]]:
    def ddl(table: str, schema: str) -> list[str]:
        spec = projection.table(table)
        if spec.columns:
            return [table_ddl(spec.name, spec.key, spec.columns, schema)]
        return table_ddl_for(table, schema)
    return ddl


@contextlib.contextmanager
def _consumer(container: Container) -> Iterator[KafkaConsumer]:
    # kafka-python checks CRCs in pure Python (most of a replay's consume time); the broker
    # validated them on produce and TCP guards the fetch, so a rebuild skips the check.
    consumer = make_consumer(container.bootstrap_servers, None, max_poll_records=5000,
                             check_crcs=False)
    try:
        yield consumer
    finally:
        consumer.close()


def _bounds(container: Container) -> tuple[dict[int, int], dict[int, int]]:
    """Each partition's first and next offset (all zero when the broker does not answer)."""
    topic = container.settings.events_topic
    try:
        with _consumer(container) as consumer:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            beginnings = {tp.partition: int(o)
                          for tp, o in consumer.beginning_offsets(tps).items()}
        ends = high_watermarks(container.bootstrap_servers, topic)
    except (RuntimeError, KafkaError):
        zeros = dict.fromkeys(range(container.settings.events_partitions), 0)
        return zeros, zeros
    return beginnings, {p: ends.get(p, b) for p, b in beginnings.items()}


def _stored_batches(container: Container, head: int, size: int = 5000
                    ) -> Iterator[list[Event]]:
    return stored_events(container.engine, container.app.mapper, head, size,
                         container.reader().table)


class _AbsorbedUpTo:
    """read_model absorbed the log up to a position (remembered, so checks stay short)."""

    def __init__(self, container: Container) -> None:
        self.engine = container.engine
        self.upto = 0

    def __call__(self, position: int) -> bool:
        if position <= self.upto:
            return True
        if absorbed(self.engine, ReadModel.name, position, after=self.upto):
            self.upto = position
            return True
        return False


def bi_manager(container: Container, interval: float = 0.25) -> BiSyncManager:
    """The live BI sync manager with the built-in and the HTTP connector (whose host policy
    is CARTOLOG_BI_ALLOW_PRIVATE_HOSTS, decision 0712)."""
    policy = HostPolicy(allow_private=container.settings.bi_allow_private_hosts)
    connectors: dict[str, Connector] = {BUILTIN: BuiltinConnector(container.engine),
                                        EXTERNAL: HttpConnector(policy)}
    return BiSyncManager(container.app, container.engine, container.reader().head,
                         _AbsorbedUpTo(container), connectors, interval)


def verify_projection(container: Container, name: str) -> list[str]:
    """Differences between a projection's live tables and a fresh replay of the store.

    Reports a projection behind the store head, and per table the rows the live tables
    lack and the rows they hold that a replay does not produce (edited or stray rows).
    The replay goes into the rebuild schema, which is dropped afterwards; nothing live
    is touched.
    """
    (projection,) = all_projections(container, [name])
    head = container.reader().head()
    problems = [] if absorbed(container.engine, name, head) else [
        f"projection {name}: has not applied every stored event up to position {head}"]
    problems += [f"projection {name}: {line}" for line in skipped_events(container.engine, name)]
    job = Rebuild(container.engine, projection, _ddl(projection))
    with job.exclusive():
        job.prepare()
        try:
            job.replay_store(lambda: _stored_batches(container, head), head)
            for spec in projection.tables:
                live = set(_rows(container, "public", spec.name))
                fresh = set(_rows(container, job.schema, spec.name))
                if live != fresh:
                    problems.append(
                        f"projection {name}: table {spec.name}: {len(fresh - live)} rows "
                        f"missing, {len(live - fresh)} rows not produced by a replay of the log")
        finally:
            job.discard()
    return problems


def retry_errors(container: Container, name: str) -> RetryOutcome:
    """Apply `name`'s recorded errors again (and resume it if its error policy stopped it)."""
    (projection,) = all_projections(container, [name])
    return retry(ProjectionRunner(container.engine, projection),
                 lambda positions: _stored_events(container, positions))


def _stored_events(container: Container, positions: Iterable[int]) -> dict[int, Event]:
    reader, mapper = container.reader(), container.app.mapper
    found = {}
    for position in positions:
        for notification in reader.after(position - 1, 1, stop=position):
            document = loads(encode(envelope(notification, mapper)))
            found[position] = Event.from_envelope(document)
    return found


def _rows(container: Container, schema: str, table: str) -> list[str]:
    with container.engine.connect() as connection:
        return list(connection.execute(text(
            f'SELECT t::text FROM "{schema}"."{table}" t')).scalars().all())
