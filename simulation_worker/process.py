"""The worker's handle on one model process (see child.py)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from multiprocessing.context import ForkServerContext
from typing import Any

from simulation_worker.child import ModelSpec, Outcome, compute

_CONTEXT: ForkServerContext | None = None


def context() -> ForkServerContext:
    """A forkserver context with the model preloaded: a job starts in milliseconds, not the
    seconds numpy, scipy and numba take to import, and nothing of the worker's threads or
    sockets leaks into the model process."""
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


class ModelProcess:
    """Starts the model on one input; relays its progress and outcome; kills it on demand."""

    def __init__(self, document: bytes, spec: ModelSpec) -> None:
        ctx = context()
        self._receiver, sender = ctx.Pipe(duplex=False)
        lifeline_reader, self._lifeline = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=compute, args=(document, spec, sender, lifeline_reader),
                                   name="cartolog-model", daemon=False)
        self.process.start()
        sender.close()
        lifeline_reader.close()
        self.outcome: Outcome | None = None

    @property
    def pid(self) -> int | None:
        """The model process's pid."""
        return self.process.pid

    def messages(self, timeout: float) -> list[tuple[str, Any]]:
        """Messages received within `timeout` seconds (progress and, last, the outcome)."""
        received: list[tuple[str, Any]] = []
        wait = timeout
        while self._receiver.poll(wait):
            try:
                kind, body = self._receiver.recv()
            except (EOFError, OSError):
                break
            if kind == "outcome":
                self.outcome = body
            received.append((kind, body))
            wait = 0
        return received

    def finished(self) -> bool:
        """The outcome arrived, or the process is gone without one."""
        return self.outcome is not None or not self.process.is_alive()

    def exit_reason(self) -> str:
        """Why the process ended without an outcome."""
        self.process.join(1)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"model process killed by signal {signal.Signals(-code).name}"
        return f"model process exited with code {code} without a result"

    def kill(self) -> None:
        """SIGTERM (it kills what it started), then SIGKILL if it is still there."""
        if self.process.is_alive() and self.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.close()

    def close(self) -> None:
        """Release the pipes."""
        self.process.join(5)
        self._receiver.close()
        self._lifeline.close()
