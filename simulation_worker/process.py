"""The worker's handle on its model process (see child.py, decision 0312).

A worker keeps one model process (`ModelHost`) for job after job: it is started, and warmed
up, before the worker takes its first job, so no job pays for numba loading or compiling the
model. A job that must stop early (timeout, cancellation, the worker stopping) kills the
process; so does a crash. The next job then gets a fresh one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from simulation_worker.child import ModelSpec, Outcome, children_of, serve

_CONTEXT: ForkServerContext | None = None
READY_TIMEOUT_S = 600.0  # a cold numba cache compiles the model: seconds, not minutes


def context() -> ForkServerContext:
    """A forkserver context with the model's modules imported: a model process starts in
    milliseconds, not the seconds numpy, scipy and numba take to import, and nothing of the
    worker's threads or sockets leaks into it. The forkserver itself never runs the model
    (it has no threads to fork): each model process warms up on its own."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload([_main_module(), "simulation_worker.child"])
    return _CONTEXT


def _main_module() -> str:
    """What each child re-imports as its main module: preloaded, that costs nothing.

    A process started as `python -m pkg.mod` (or a console script) would otherwise re-import
    its whole main module, and everything that imports, in every model process.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None and spec.name else "__main__"


def _children(pid: int) -> list[int]:
    """The processes `pid` started: from its threads' `children` files, or, on a kernel
    without them, by scanning every process's parent."""
    try:
        return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    except FileNotFoundError:
        return children_of(pid) if Path(f"/proc/{pid}").exists() else []


def resident_mb(pid: int) -> float:
    """Resident memory of process `pid` and every process it started, in MiB (Linux /proc;
    0 for a process that is gone, or where there is no /proc). An external model runs as a
    child of the model process, so it is counted too."""
    total_kb, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
            todo.extend(_children(current))
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total_kb / 1024.0


class ModelHost:
    """One worker's model process: started at most once per need, kept while it is healthy."""

    def __init__(self, warm: bool = True, threads: int = 0) -> None:
        self.warm, self.threads = warm, threads
        self.process: BaseProcess | None = None
        self._jobs: Connection | None = None
        self._out: Connection | None = None
        self._lifeline: Connection | None = None
        self.ready = False
        self.warm_up_s: float | None = None
        self.started = 0  # processes started so far

    def start(self) -> None:
        """Start a model process unless a live one is there (it warms up on its own)."""
        if self.process is not None and self.process.is_alive():
            return
        self.discard()
        ctx = context()
        jobs_reader, self._jobs = ctx.Pipe(duplex=False)
        self._out, sender = ctx.Pipe(duplex=False)
        lifeline_reader, self._lifeline = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=serve, args=(jobs_reader, sender, lifeline_reader,
                                                       self.warm, self.threads),
                                   name="cartolog-model", daemon=False)
        self.process.start()
        self.started += 1
        for end in (jobs_reader, sender, lifeline_reader):
            end.close()
        self.ready = False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Block until the process has warmed up; False if it died or took too long."""
        self.start()
        deadline = time.monotonic() + timeout
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._receive(min(remaining, 0.5))
            if not self.ready and not self.alive():
                return False
        return True

    def alive(self) -> bool:
        """Whether the model process is running."""
        return self.process is not None and self.process.is_alive()

    def run(self, document: bytes, spec: ModelSpec) -> ModelProcess:
        """Hand one job to the process (a fresh one if needed); its handle."""
        self.start()
        assert self._jobs is not None
        with contextlib.suppress(OSError):  # it died just now: the job's handle reports that
            self._jobs.send((document, spec))
        return ModelProcess(self)

    def _receive(self, timeout: float) -> tuple[str, Any] | None:
        """One message from the process within `timeout`; `ready` is absorbed here."""
        out = self._out
        if out is None:
            return None
        try:
            if not out.poll(timeout):
                return None
            kind, body = out.recv()
        except (EOFError, OSError):
            return None
        if kind == "ready":
            self.ready, self.warm_up_s = True, float(body)
            return None
        return kind, body

    def pid(self) -> int | None:
        """The model process's pid, while there is one."""
        return None if self.process is None else self.process.pid

    def kill(self) -> None:
        """SIGTERM (it kills what it started), then SIGKILL if it is still there."""
        process = self.process
        if process is None:
            return
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            process.join(2)
        if process.is_alive():
            process.kill()
        self.discard()

    def discard(self) -> None:
        """Forget the current process (it is dead, or being killed) and close its pipes."""
        if self.process is not None:
            self.process.join(5)
        for end in (self._jobs, self._out, self._lifeline):
            if end is not None:
                end.close()
        self.process = self._jobs = self._out = self._lifeline = None
        self.ready = False

    def close(self) -> None:
        """The worker stops: the process sees its jobs pipe close and exits."""
        if self._jobs is not None:
            self._jobs.close()
            self._jobs = None
        if self.process is not None:
            self.process.join(5)
        self.kill()


class ModelProcess:
    """One job on the host's model process: its progress and outcome; kills it on demand."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.outcome: Outcome | None = None
        self._pid = host.pid()

    @property
    def pid(self) -> int | None:
        """The model process's pid."""
        return self._pid

    def messages(self, timeout: float) -> list[tuple[str, Any]]:
        """Messages received within `timeout` seconds (progress and, last, the outcome)."""
        received: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        while self.outcome is None:
            message = self.host._receive(max(0.0, deadline - time.monotonic()) if not received
                                         else 0.0)
            if message is None:
                if received or time.monotonic() >= deadline or not self.host.alive():
                    break
                continue
            kind, body = message
            if kind == "outcome":
                self.outcome = body
            received.append((kind, body))
        return received

    def finished(self) -> bool:
        """The outcome arrived, or the process is gone without one."""
        if self.outcome is not None:
            return True
        if self.host.alive():
            return False
        self.messages(0.0)  # an outcome sent just before it died
        return True

    def exit_reason(self) -> str:
        """Why the process ended without an outcome."""
        process = self.host.process
        code = None
        if process is not None:
            process.join(1)
            code = process.exitcode
        self.host.discard()
        if code is not None and code < 0:
            return f"model process killed by signal {signal.Signals(-code).name}"
        return f"model process exited with code {code} without a result"

    def resident_mb(self) -> float:
        """Resident memory of the model process and what it started (an external model)."""
        return 0.0 if self._pid is None else resident_mb(self._pid)

    def kill(self) -> None:
        """Stop this job now: the model process goes (the next job gets a fresh one)."""
        self.host.kill()

    def close(self) -> None:
        """The job is over; the model process stays for the next one."""
