"""`cartolog up`'s supervisor starts a killed child again and leaves a cleanly stopped one."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from infra.processes import child_processes
from infra.settings import Settings
from infra.supervisor import ENTRY, Supervisor


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_child_is_started_again_and_stop_ends_it() -> None:
    supervisor = Supervisor({"sleeper": ("sleep", "60")}, os.environ, restart_delay_s=0.1)
    supervisor.start()
    try:
        first = supervisor.pids()["sleeper"]
        os.kill(first, signal.SIGKILL)
        _wait(lambda: supervisor.pids().get("sleeper", first) != first)
        assert supervisor.children[0].restarts == 1
    finally:
        supervisor.stop()
    assert supervisor.pids() == {}


def test_a_child_that_exits_cleanly_is_left_stopped() -> None:
    supervisor = Supervisor({"done": ("true",)}, os.environ, restart_delay_s=0.1)
    supervisor.start()
    try:
        _wait(lambda: supervisor.pids() == {})
        time.sleep(1.0)
        assert supervisor.children[0].restarts == 0
    finally:
        supervisor.stop()


def test_up_runs_the_projector_and_n_workers_as_cartolog_children() -> None:
    children = child_processes(Settings(), 3)
    assert sorted(children) == ["projector", "worker-1", "worker-2", "worker-3"]
    assert children["worker-2"][-3:] == ("-c", ENTRY, "worker")
    assert children["projector"][-1] == "projector"
