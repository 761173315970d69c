"""kill -9 the projector process mid-batch, again and again: the read model stays exact."""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time

from sqlalchemy import text

from adapters.projector.queries import absorbed
from infra import projections_wiring as wiring
from infra.wiring import Container
from projections.registry import BUILT_IN
from tests.integration.logcheck import wait_for
from tests.integration.projections.conftest import (
    Workload,
    checksums,
    differences,
    dumps,
    running,
    start_projector_process,
    wait_caught_up,
)


class Writer(threading.Thread):
    """Edits, forks and runs until stopped."""

    def __init__(self, container: Container) -> None:
        super().__init__(daemon=True)
        self.driver = Workload(container, ("acme", "rival"))
        self.stopping = threading.Event()
        self.commands = 0

    def run(self) -> None:
        rng = random.Random(5)
        for kind in (0, 1, 0, 1):
            self.driver.do(kind, self.commands % 2, 1, 1.0)
            self.commands += 1
        while not self.stopping.is_set():
            self.driver.do(rng.choice((2, 2, 2, 3, 4, 5)), rng.randrange(2), rng.randrange(50),
                           rng.uniform(0, 1000))
            self.commands += 1


def applied_offsets(container: Container) -> int:
    with container.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_tracking "
            "WHERE projection = 'read_model'")).scalar_one())


def test_projector_killed_five_times_mid_batch_stays_exact(own_container: Container) -> None:
    container = own_container
    container.ensure_topics()
    writer = Writer(container)
    rng = random.Random(20261128)
    progress = [0]
    with running(container.relay()):
        writer.start()
        try:
            for _ in range(5):
                process = start_projector_process(container, "--no-bi-sync", batch=50)
                before = applied_offsets(container)
                wait_for(lambda before=before: applied_offsets(container) > before, 60,
                         "the projector to apply a batch")
                time.sleep(rng.uniform(0.1, 1.0))
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                process.send_signal(signal.SIGKILL)
                process.wait()
                progress.append(applied_offsets(container))
        finally:
            writer.stopping.set()
            writer.join(60)
        assert writer.commands > 50
        assert all(b > a for a, b in itertools.pairwise(progress)), progress
        process = start_projector_process(container, "--no-bi-sync", batch=50)
        try:
            wait_caught_up(container, timeout=120)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
    live = checksums(container)
    live_rows = dumps(container)
    head = container.reader().head()
    for cls in BUILT_IN:  # no gaps: every stored event was applied
        assert absorbed(container.engine, cls.name, head)
        wiring.rebuild(container, cls.name, "kafka")
    with container.engine.connect() as connection:
        errors = connection.execute(text("SELECT error FROM projection_errors")).all()
    assert errors == []
    assert checksums(container) == live, differences(live_rows, dumps(container))
