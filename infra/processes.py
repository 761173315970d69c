"""The long-running processes `cartolog up` starts beside the API.

Each entry of `background_processes` builds a loop object with `run()` (blocks until
stopped) and `stop()` (asks it to finish its current unit of work and return); `cartolog up`
runs each in a thread of its own. `child_processes` names the `cartolog` subcommands `up`
runs as supervised child processes instead (infra/supervisor.py). Each loop also has its own
`cartolog NAME` command for scaling out.
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


def background_processes() -> dict[str, ProcessFactory]:
    """Name → factory of every loop `cartolog up` runs in a thread."""
    from infra import jobs_wiring

    return {
        "relay": lambda container: container.relay(),
        "dispatcher": jobs_wiring.dispatcher,
        "recorder": jobs_wiring.recorder,
    }


def child_processes(settings: Settings, workers: int | None = None) -> dict[str, tuple[str, ...]]:
    """Name → command line of each child process of `cartolog up`: the projector (with the
    live BI sync manager) and `workers` simulation workers (default CARTOLOG_WORKERS)."""
    from infra.supervisor import cartolog_command

    count = settings.jobs.workers if workers is None else workers
    return {"projector": cartolog_command("projector"),
            **{f"worker-{index + 1}": cartolog_command("worker") for index in range(count)}}
