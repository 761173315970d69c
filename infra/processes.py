"""The long-running processes `cartolog up` starts beside the API.

Each entry builds a loop object with `run()` (blocks until stopped) and `stop()` (asks
it to finish its current unit of work and return). `cartolog up` runs every entry in a
thread of its own; each also has its own `cartolog NAME` command for scaling out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from infra.settings import Settings
from infra.wiring import Container


class Process(Protocol):
    """A loop that runs until stopped."""

    def run(self) -> None:
        """Run until stop() is called."""

    def stop(self) -> None:
        """Ask run() to finish its unit of work and return."""


ProcessFactory = Callable[[Container], Process]


def background_processes(settings: Settings) -> dict[str, ProcessFactory]:
    """Name → factory of every process `cartolog up` starts (add new processes here)."""
    return {
        "relay": lambda container: container.relay(),
        "projector": _projector,
        **job_processes(settings),
    }


def job_processes(settings: Settings) -> dict[str, ProcessFactory]:
    """Dispatcher, recorder and CARTOLOG_WORKERS workers (default 1)."""
    from infra import jobs_wiring

    workers = settings.jobs.workers
    named: dict[str, ProcessFactory] = {"dispatcher": jobs_wiring.dispatcher,
                                        "recorder": jobs_wiring.recorder}
    for index in range(workers):
        named[f"worker-{index + 1}"] = lambda container: jobs_wiring.worker(container)
    return named


def _projector(container: Container) -> Process:
    """The projector and the live BI sync manager."""
    from infra.projections_wiring import projector_process

    return projector_process(container)
