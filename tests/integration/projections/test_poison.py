"""Events whose rows PostgreSQL cannot store: only that event follows the error policy.

On the real PostGIS: a text value with NUL fails the write (psycopg2 refuses it in an
INSERT, PostgreSQL refuses it in a COPY). The batch is applied again event by event, each
in a savepoint: the other events' rows are written, the bad one is recorded (or stops its
projection), and `projections retry` applies it once the projection is fixed.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import text

from adapters.projector.base import Record
from adapters.projector.consumer import make_consumer
from adapters.projector.ddl import ensure_tables
from adapters.projector.live import Projector
from adapters.projector.queries import crashed, statuses
from adapters.projector.retry import retry
from adapters.projector.runner import ProjectionRunner
from infra.wiring import Container
from projections.base import Context, Event, Op, Projection, Put, TableSpec, View

TOPIC = "poison-topic"


class Labels(Projection):
    """One row per tenant with its display name, stored as given."""

    name = "labels_test"
    tables = (TableSpec("labels_test_rows", ("tenant_id",),
                        {"tenant_id": "text", "label": "text"}),)

    def apply(self, event: Event, view: View) -> list[Op]:
        return [Put(self.tables[0].name, {"tenant_id": event.tenant_id,
                                          "label": event.payload["display_name"]})]


class CleanLabels(Labels):
    """The fixed projection: NUL is dropped from labels."""

    def apply(self, event: Event, view: View) -> list[Op]:
        label = event.payload["display_name"].replace("\x00", "")
        return [Put(self.tables[0].name, {"tenant_id": event.tenant_id, "label": label})]


class StrictLabels(Labels):
    """The same rows, in a projection that stops at an event it cannot apply."""

    name = "strict_labels_test"
    on_error = "stop"
    tables = (TableSpec("strict_labels_test_rows", ("tenant_id",),
                        {"tenant_id": "text", "label": "text"}),)


class CleanStrictLabels(StrictLabels):
    """The fixed strict projection."""

    def apply(self, event: Event, view: View) -> list[Op]:
        label = event.payload["display_name"].replace("\x00", "")
        return [Put(self.tables[0].name, {"tenant_id": event.tenant_id, "label": label})]


class Exploding(Labels):
    """Raises what no error policy covers: the projector itself dies."""

    name = "exploding_test"
    tables = (TableSpec("exploding_test_rows", ("tenant_id",),
                        {"tenant_id": "text", "label": "text"}),)

    def apply(self, event: Event, view: View) -> list[Op]:
        raise RuntimeError("the projection's host is broken")


def record(offset: int, tenant: str, label: str) -> Record:
    document = {"type": "Tenant.Registered", "tenant_id": tenant, "aggregate_type": "Tenant",
                "aggregate_id": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant)),
                "aggregate_version": 1, "position": offset + 1,
                "occurred_at": "2026-01-01T00:00:00+00:00", "event_id": str(uuid.uuid4()),
                "payload": {"display_name": label}}
    return Record(TOPIC, 0, offset, json.dumps(document).encode())


def labels(container: Container, table: str) -> dict[str, str]:
    with container.engine.connect() as connection:
        return {t: label for t, label in connection.execute(text(
            f"SELECT tenant_id, label FROM {table}")).all()}


def errors(container: Container, projection: str) -> list[tuple[str, int, str]]:
    with container.engine.connect() as connection:
        return [(t, o, e) for t, o, e in connection.execute(text(
            'SELECT tenant_id, "offset", error FROM projection_errors '
            "WHERE projection = :p ORDER BY 2"), {"p": projection}).all()]


def runner_for(container: Container, projection: Projection) -> ProjectionRunner:
    ensure_tables(container.engine, [projection])
    return ProjectionRunner(container.engine, projection)


def test_a_nul_in_a_small_batch_is_recorded_and_the_others_are_written(
    own_container: Container,
) -> None:
    runner = runner_for(own_container, Labels(Context(own_container.blobs)))
    outcome = runner.process([record(0, "t1", "one"), record(1, "t2", "nul\x00label"),
                              record(2, "t3", "three")])
    assert (outcome.applied, outcome.errors, outcome.stopped) == (2, 1, None)
    assert labels(own_container, "labels_test_rows") == {"t1": "one", "t3": "three"}
    ((tenant, offset, error),) = errors(own_container, "labels_test")
    assert (tenant, offset) == ("t2", 1) and "NUL" in error
    assert runner.tracked_offsets(TOPIC) == {0: 3}


def test_a_nul_in_a_copied_batch_is_isolated_too(own_container: Container) -> None:
    runner = runner_for(own_container, Labels(Context(own_container.blobs)))
    batch = [record(i, f"t{i}", f"label {i}") for i in range(700)]  # written by COPY
    batch[350] = record(350, "t350", "\x00")
    outcome = runner.process(batch)
    assert (outcome.applied, outcome.errors) == (699, 1)
    stored = labels(own_container, "labels_test_rows")
    assert len(stored) == 699 and "t350" not in stored and stored["t699"] == "label 699"
    assert [(t, o) for t, o, _ in errors(own_container, "labels_test")] == [("t350", 350)]


def test_the_stop_policy_stops_only_that_projection(own_container: Container) -> None:
    context = Context(own_container.blobs)
    strict = runner_for(own_container, StrictLabels(context))
    lenient = runner_for(own_container, Labels(context))
    batch = [record(0, "t1", "one"), record(1, "t2", "\x00"), record(2, "t3", "three")]
    stopped = strict.process(batch)
    assert stopped.stopped is not None and f"{TOPIC}[0]@1" in stopped.stopped
    assert lenient.process(batch).applied == 2
    assert labels(own_container, "strict_labels_test_rows") == {"t1": "one"}
    assert strict.tracked_offsets(TOPIC) == {0: 1}  # resumes at the bad event
    found = {s.name: s for s in statuses(own_container.engine,
                                         ["strict_labels_test", "labels_test"], TOPIC)}
    assert found["strict_labels_test"].state == "stopped"
    assert "NUL" in (found["strict_labels_test"].last_error or "")
    assert (found["labels_test"].state, found["labels_test"].errors) == ("running", 1)


def test_retry_applies_recorded_errors_once_the_projection_is_fixed(
    own_container: Container,
) -> None:
    context = Context(own_container.blobs)
    batch = [record(0, "t1", "one"), record(1, "t2", "nul\x00label")]
    runner_for(own_container, Labels(context)).process(batch)
    by_position = {r.offset + 1: r.decode() for r in batch}

    def load(positions: Iterable[int]) -> Mapping[int, Event]:
        return {p: by_position[p] for p in positions}

    still_broken = retry(runner_for(own_container, Labels(context)), load)
    assert (still_broken.applied, len(still_broken.failed)) == (0, 1)
    assert len(errors(own_container, "labels_test")) == 1

    fixed = retry(runner_for(own_container, CleanLabels(context)), load)
    assert (fixed.applied, fixed.failed, fixed.unavailable) == (1, [], 0)
    assert errors(own_container, "labels_test") == []
    assert labels(own_container, "labels_test_rows") == {"t1": "one", "t2": "nullabel"}


def test_retry_resumes_a_stopped_projection(own_container: Container) -> None:
    context = Context(own_container.blobs)
    strict = runner_for(own_container, StrictLabels(context))
    strict.process([record(0, "t1", "\x00"), record(1, "t2", "two")])
    assert strict.load_stopped()
    assert retry(strict, lambda positions: {}).resumed
    assert not strict.load_stopped()
    fixed = runner_for(own_container, CleanStrictLabels(context))
    assert fixed.process([record(0, "t1", "\x00"), record(1, "t2", "two")]).applied == 2
    assert labels(own_container, "strict_labels_test_rows") == {"t1": "", "t2": "two"}


def test_a_dying_projector_is_recorded_and_cleared_when_it_runs_again(
    own_container: Container,
) -> None:
    from adapters.kafka import make_producer

    container = own_container
    container.ensure_topics()
    topic = container.settings.events_topic
    producer = make_producer(container.bootstrap_servers)
    producer.send(topic, key=b"t1", value=record(0, "t1", "one").value)
    producer.flush()
    producer.close()
    runner = runner_for(container, Exploding(Context(container.blobs)))
    servers = container.bootstrap_servers
    projector = Projector([runner], lambda: make_consumer(servers, "poison-test"), topic)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            projector.run()
        except RuntimeError as error:
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and len(failures) == 1
    assert crashed(container.engine) == [
        "exploding_test: projector died: RuntimeError: the projection's host is broken"]
    (status,) = statuses(container.engine, ["exploding_test"], topic)
    assert status.state == "stopped" and "projector died" in (status.last_error or "")
    runner.mark_running()
    assert crashed(container.engine) == []
