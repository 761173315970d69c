"""Helpers for projection tests: relay and projector threads, workloads, table checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from adapters.projector.live import Projector
from adapters.projector.queries import absorbed
from adapters.relay import Relay
from domain.edits import AddLink, ChangeDemandParameters, CloseLink, ModifyLink, SetZoneAttributes
from domain.values import Link
from infra import projections_wiring as wiring
from infra.wiring import Container
from projections.registry import BUILT_IN
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.integration.logcheck import wait_for
from tests.unit.test_domain import tiny_network

ALL_TABLES = [spec for cls in BUILT_IN for spec in cls.tables]


@contextlib.contextmanager
def running(loop: Relay | Projector | Any) -> Iterator[Any]:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.stop()
        thread.join(30)
        assert not thread.is_alive()


@contextlib.contextmanager
def relay_and_projector(container: Container, names: list[str] | None = None
                        ) -> Iterator[Projector]:
    container.ensure_topics()
    with running(container.relay()), running(wiring.projector(container, names)) as projector:
        yield projector


def caught_up(container: Container, names: list[str] | None = None) -> bool:
    head = container.reader().head()
    return all(absorbed(container.engine, name, head)
               for name in names or [c.name for c in BUILT_IN])


def wait_caught_up(container: Container, names: list[str] | None = None,
                   timeout: float = 60) -> None:
    wait_for(lambda: caught_up(container, names), timeout, "the projections to catch up")


def dumps(container: Container, tables: list[Any] | None = None) -> dict[str, list[str]]:
    """Each table's rows as PostgreSQL prints them, ordered by key."""
    found = {}
    with container.engine.connect() as connection:
        for spec in tables or ALL_TABLES:
            order = ", ".join(f'"{k}"' for k in spec.key)
            found[spec.name] = list(connection.execute(text(
                f'SELECT t::text FROM "{spec.name}" t ORDER BY {order}')).scalars().all())
    return found


def checksums(container: Container, tables: list[Any] | None = None) -> dict[str, str]:
    """sha256 of each table's ordered dump."""
    return {name: hashlib.sha256("\n".join(rows).encode()).hexdigest()
            for name, rows in dumps(container, tables).items()}


def differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    """Rows only in one of two dumps, per table (for failure messages)."""
    return {name: (len(before[name]), len(after[name]),
                   sorted(set(before[name]) - set(after[name]))[:2],
                   sorted(set(after[name]) - set(before[name]))[:2])
            for name in before if before[name] != after[name]}


def counts(container: Container, *tables: str) -> dict[str, int]:
    with container.engine.connect() as connection:
        return {t: int(connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                for t in tables}


def projector_env(container: Container) -> dict[str, str]:
    settings = container.settings
    return {**os.environ, "DATABASE_URL": settings.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": container.bootstrap_servers,
            "CARTOLOG_TOPIC_PREFIX": settings.topic_prefix,
            "CARTOLOG_EVENTS_PARTITIONS": str(settings.events_partitions)}


def start_projector_process(container: Container, *extra: str, batch: int = 5000
                            ) -> subprocess.Popen[bytes]:
    env = {**projector_env(container), "CARTOLOG_PROJECTOR_BATCH": str(batch)}
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "projector", *extra], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def result_document(link_ids: list[str], zone_ids: list[int], scale: float) -> bytes:
    return json.dumps({
        "links": [{"link_id": k, "flow": scale * (i + 1), "volume_capacity": scale / 1000,
                   "time": 1.5 + i} for i, k in enumerate(link_ids)],
        "zones": [{"zone_id": z, "trips": scale + z, "jobs_within_threshold": 10.0 * z,
                   "logsum_accessibility": 0.5 * z} for z in zone_ids],
    }, sort_keys=True).encode()


class Workload:
    """Drives the application with commands chosen by small integers (for hypothesis)."""

    def __init__(self, container: Container, tenants: tuple[str, ...]) -> None:
        self.app, self.blobs, self.tenants = container.app, container.blobs, tenants
        self.datasets: dict[str, list[uuid.UUID]] = {t: [] for t in tenants}
        self.scenarios: dict[str, list[uuid.UUID]] = {t: [] for t in tenants}
        self.added = 0

    def do(self, kind: int, tenant_index: int, pick: int, number: float) -> None:
        tenant = self.tenants[tenant_index % len(self.tenants)]
        if kind == 0 or not self.datasets[tenant]:
            self.datasets[tenant].append(
                self.app.import_dataset(tenant, f"d{pick}", tiny_network(), OPERATOR))
            return
        if kind == 1 or not self.scenarios[tenant]:
            dataset = self.datasets[tenant][pick % len(self.datasets[tenant])]
            self.scenarios[tenant].append(
                self.app.create_scenario(tenant, dataset, f"s{pick}", OPERATOR))
            return
        scenario_id = self.scenarios[tenant][pick % len(self.scenarios[tenant])]
        if kind == 2:
            self.edit(tenant, scenario_id, pick, number)
        elif kind == 3:
            self.scenarios[tenant].append(
                self.app.fork_scenario(tenant, scenario_id, f"f{pick}", OPERATOR))
        else:
            self.run(tenant, scenario_id, completes=kind == 4, number=number)

    def edit(self, tenant: str, scenario_id: uuid.UUID, pick: int, number: float) -> None:
        scenario = self.app.get_scenario(tenant, scenario_id)
        open_links = [k for k in ("a", "b", "c") if k not in scenario.closed_links]
        choice = pick % 5
        if choice == 0 or not open_links:
            edit: Any = SetZoneAttributes(1 + pick % 2, population=number, jobs=number / 2)
        elif choice == 1:
            edit = ModifyLink(open_links[pick % len(open_links)], capacity=100.0 + number)
        elif choice == 2 and len(open_links) > 1:
            edit = CloseLink(open_links[pick % len(open_links)])
        elif choice == 3:
            self.added += 1
            edit = AddLink(Link(f"n{self.added}", 3, 1, 700.0 + number, 1.5, 2.0,
                                geometry=((0.01, 0.01), (0.005, 0.02), (0.0, 0.0))))
        else:
            edit = ChangeDemandParameters(trip_rate=1.0 + number / 1000, deterrence="power")
        self.app.edit_scenario(tenant, scenario_id, scenario.version, [edit], OPERATOR)

    def run(self, tenant: str, scenario_id: uuid.UUID, completes: bool, number: float) -> None:
        run_id = self.app.request_simulation(tenant, scenario_id, "builtin", {"gap": 1e-4},
                                             OPERATOR, max_attempts=1)
        self.app.start_attempt(tenant, run_id, 1, "worker-1", OPERATOR)
        if not completes:
            self.app.fail_attempt(tenant, run_id, 1, "diverged", "Traceback ...", OPERATOR)
            return
        sha = self.blobs.put(tenant, result_document(["a", "b", "c"], [1, 2], number))
        self.app.complete_run(tenant, run_id, 1, sha,
                              {"vehicle_hours": number, "vehicle_km": 2 * number}, 1.25,
                              OPERATOR)
