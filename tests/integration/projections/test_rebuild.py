"""Rebuilds: byte-identical to the live read model, and swapped in under live reads."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from adapters.kafka import high_watermarks
from adapters.projector.queries import statuses
from domain.errors import AlreadyExists
from infra import projections_wiring as wiring
from infra.wiring import Container
from projections.registry import BUILT_IN
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.integration.projections.conftest import (
    Workload,
    checksums,
    counts,
    projector_env,
    relay_and_projector,
    wait_caught_up,
)

TENANTS = ("acme", "rival", "third")
commands = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 50),
              st.floats(0, 1e6, allow_nan=False, allow_infinity=False)),
    min_size=10, max_size=40)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(workload=commands)
def test_a_rebuild_from_zero_equals_the_live_read_model(
    own_container: Container, workload: list[tuple[int, int, int, float]],
) -> None:
    container = own_container
    with contextlib.suppress(AlreadyExists):
        container.app.register_tenant("third", OPERATOR)
    driver = Workload(container, TENANTS)
    with relay_and_projector(container):
        for kind, tenant, pick, number in workload:
            driver.do(kind, tenant, pick, number)
        wait_caught_up(container)
        live = checksums(container)
        assert counts(container, "scenario_links", "datasets")["datasets"] > 0
        for source in ("kafka", "store"):
            for cls in BUILT_IN:
                _applied, used = wiring.rebuild(container, cls.name, source)
                assert used == source
            assert checksums(container) == live, f"rebuild from {source} differs"
        # The live projector carries on after the swaps: the next change is projected.
        driver.do(2, 0, 7, 42.0)
        wait_caught_up(container)


def test_reads_never_fail_and_switch_at_the_swap(own_container: Container) -> None:
    container = own_container
    driver = Workload(container, ("acme",))
    for kind in (0, 1, 1, 2, 2, 3, 4, 4, 5):
        driver.do(kind, 0, kind, 10.0 * kind)
    with relay_and_projector(container):
        wait_caught_up(container)
    with container.engine.begin() as connection:  # only a rebuild can undo this
        connection.execute(text("UPDATE scenarios SET name = 'stale' WHERE tenant_id = 'acme'"))

    seen: dict[int, list[str]] = {0: [], 1: [], 2: []}
    failures: list[BaseException] = []
    stop = threading.Event()

    def read(index: int) -> None:
        engine = create_engine(container.settings.database_url)
        while not stop.is_set():
            try:
                with engine.connect() as connection:
                    names = connection.execute(text(
                        "SELECT string_agg(name, ',' ORDER BY scenario_id) FROM scenarios "
                        "JOIN simulation_runs USING (tenant_id, scenario_id) "
                        "WHERE tenant_id = 'acme'")).scalar_one()
                seen[index].append(names)
            except Exception as error:  # any failure of a read is what this test looks for
                failures.append(error)
        engine.dispose()

    readers = [threading.Thread(target=read, args=(i,)) for i in range(3)]
    for reader in readers:
        reader.start()
    time.sleep(0.5)
    done = subprocess.run([sys.executable, "-m", "infra.cli", "projections", "rebuild",
                           "read_model"], cwd=REPO, env=projector_env(container),
                          capture_output=True, text=True, timeout=300, check=False)
    time.sleep(0.5)
    stop.set()
    for reader in readers:
        reader.join(30)
    assert done.returncode == 0, done.stderr
    assert "rebuilt read_model" in done.stdout
    assert failures == []
    for names in seen.values():
        assert "stale" in names[0] and "stale" not in names[-1]
        switched = next(i for i, found in enumerate(names) if "stale" not in found)
        assert all("stale" not in found for found in names[switched:]), "reads went back"


def test_lag_is_true_after_a_store_rebuild_and_writes_during_it_arrive(
    own_container: Container,
) -> None:
    container = own_container
    topic = container.settings.events_topic
    driver = Workload(container, ("acme",))
    for kind in (0, 1, 2, 2, 3):
        driver.do(kind, 0, kind, 5.0)
    during: list[int] = []

    def write_once(_position: int, _total: int) -> None:  # a write the replay cannot see
        if not during:
            during.append(1)
            driver.do(2, 0, 9, 77.0)

    with relay_and_projector(container):
        wait_caught_up(container)
        wiring.rebuild(container, "read_model", "store", write_once)
        (status,) = statuses(container.engine, ["read_model"], topic)
        assert status.lag is not None and status.lag <= 1  # at most the write during it
        wait_caught_up(container, ["read_model"], timeout=30)  # with no newer event
        time.sleep(3)  # idle: the projector saves high watermarks every 2 s
        (status,) = statuses(container.engine, ["read_model"], topic)
    assert during == [1]
    assert status.lag == 0
    assert status.offsets == high_watermarks(container.bootstrap_servers, topic)
