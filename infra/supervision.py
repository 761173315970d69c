"""Threads of the background processes `cartolog up` runs, checked by `/readyz`."""

from __future__ import annotations

import logging
import threading

from infra.processes import Process

log = logging.getLogger(__name__)


class ProcessThreads:
    """Runs each process in a thread of its own and remembers why any of them ended."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.failures: dict[str, str] = {}

    def start(self, name: str, process: Process) -> threading.Thread:
        """Run `process` in a daemon thread named `name`."""

        def run() -> None:
            try:
                process.run()
            except Exception as error:
                self.failures[name] = f"{type(error).__name__}: {error}"
                log.exception("%s died", name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads[name] = thread
        thread.start()
        return thread

    def check(self) -> None:
        """A readiness check: RuntimeError naming each process whose thread ended."""
        dead = [f"{name} stopped" + (f" ({self.failures[name]})" if name in self.failures else "")
                for name, thread in self.threads.items() if not thread.is_alive()]
        if dead:
            raise RuntimeError("; ".join(dead))
