"""Child processes of `cartolog up`: started, restarted when they fail, stopped on exit.

The simulation workers and the projector run as `cartolog worker` / `cartolog projector`
children rather than threads of `up` (decision 0311): a crash or a kill takes down only that
process, which is started again, as an orchestrator would; the model-heavy and replay-heavy
loops do not share the API's interpreter lock.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from infra.machine import memory_mb

log = logging.getLogger(__name__)
MODEL_THREADS = "CARTOLOG_MODEL_THREADS"
MODEL_MEMORY = "CARTOLOG_MODEL_MEMORY_MB"

# `python -c` rather than `-m infra.cli`: runpy warns when a package imports the module first.
ENTRY = "import sys; from infra.cli import main; sys.exit(main(sys.argv[1:]))"


def cartolog_command(*args: str) -> tuple[str, ...]:
    """The command line of `cartolog ARGS` with this interpreter."""
    return (sys.executable, "-c", ENTRY, *args)


@dataclass
class Child:
    """One supervised command line and its current process."""

    name: str
    command: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0


class Supervisor:
    """Keeps each named `cartolog` subcommand running until stop(): a child that is killed
    or fails is started again; one that exits cleanly (asked to stop) is not."""

    def __init__(self, commands: Mapping[str, Sequence[str]], env: Mapping[str, str],
                 restart_delay_s: float = 1.0, grace_s: float = 40.0) -> None:
        self.children = [Child(name, tuple(command)) for name, command in commands.items()]
        self.env = share_cores(dict(env), sum(name.startswith("worker") for name in commands))
        self.restart_delay_s = restart_delay_s
        self.grace_s = grace_s
        self.stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def start(self) -> None:
        """Start every child, then watch them."""
        for child in self.children:
            self._spawn(child)
        self._watcher.start()

    def pids(self) -> dict[str, int]:
        """Name → pid of each running child."""
        return {c.name: c.process.pid for c in self.children
                if c.process is not None and c.process.poll() is None}

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.command, env=self.env)
        log.info("%s started (pid %d)", child.name, child.process.pid)

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            for child in self.children:
                code = None if child.process is None else child.process.poll()
                if code is None or code == 0 or self.stopping.is_set():
                    continue  # running, or stopped cleanly (e.g. Ctrl-C reached it too)
                log.warning("%s (pid %d) exited with %d; starting it again", child.name,
                            child.process.pid if child.process else -1, code)
                if self.stopping.wait(self.restart_delay_s):
                    return
                child.restarts += 1
                self._spawn(child)

    def stop(self) -> None:
        """SIGTERM every child; SIGKILL those still running after the grace period."""
        self.stopping.set()
        running = [c.process for c in self.children
                   if c.process is not None and c.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + self.grace_s
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def share_cores(env: dict[str, str], workers: int) -> dict[str, str]:
    """`env` with the machine's cores shared among `workers` local workers' models
    (CARTOLOG_MODEL_THREADS, unless set): two models with a thread per core each would
    oversubscribe the cores and spin against each other (decision 0314)."""
    if workers > 0 and not env.get(MODEL_THREADS):
        env[MODEL_THREADS] = str(max(1, (os.cpu_count() or 1) // workers))
    memory = memory_mb() if workers > 0 and not env.get(MODEL_MEMORY) else 0
    if memory:  # and their memory: each model may use its share of 75 % of the machine (0315)
        env[MODEL_MEMORY] = str(max(1, memory // workers))
    return env


def child_env(bootstrap_servers: str) -> dict[str, str]:
    """This process's environment, with the broker `up` resolved (maybe one it started)."""
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers}
