"""Read an untrusted upload in a child process with bounds (decisions 0709, 0710).

The API serves every tenant from one process. A file that crashes a native reader (HDF5,
GDAL, libosmium), that expands to gigabytes (a zip or PBF bomb) or that keeps a reader busy
for minutes must cost its uploader a 422, not the process every other tenant is served by.
`run_isolated` runs a reader in a forkserver child whose address space is limited to what it
had at start plus `memory_mb`, kills it after `timeout_s`, and brings back its result or the
exception it raised; a crash, a timeout or running out of memory is an `IsolatedFailure`
naming what happened in one line.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")

# Modules a child starts with (imported once by the forkserver, not once per upload): each
# module whose readers run here adds itself with `preload(__name__)`.
_PRELOAD: list[str] = []


def preload(module: str) -> None:
    """Have children start with `module` imported (takes effect if called before the first
    child of this process)."""
    if module not in _PRELOAD:
        _PRELOAD.append(module)


@dataclass(frozen=True)
class Bounds:
    """What one read may take: its own memory above the child's start, and wall time."""

    memory_mb: int | None = 4096
    timeout_s: float = 300.0


class IsolatedFailure(Exception):
    """The reader did not answer: it crashed, ran out of time or of memory, or raised an
    exception it was not expected to. `str()` is the one-line reason for the uploader."""


def run_isolated(target: Callable[..., T], args: tuple[Any, ...], bounds: Bounds, *,
                 what: str, reader: str = "the reader",
                 expected: tuple[type[BaseException], ...] = ()) -> T:
    """`target(*args)` run in a child process. An exception of the `expected` kinds is raised
    here as it was raised there; any other outcome that is not a result is an
    IsolatedFailure ("reading {what} took more than 300 s; it was stopped", "{what} is
    corrupt: reading it stopped {reader} (signal SIGSEGV)", ...)."""
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, target, args, bounds.memory_mb,
                                                  expected),
                            name="cartolog-upload-reader", daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(bounds.timeout_s):
            raise IsolatedFailure(
                f"reading {what} took more than {bounds.timeout_s:g} s; it was stopped")
        kind, body = receiver.recv()
    except (EOFError, OSError):
        child.join(5)
        code = child.exitcode
        how = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit code {code}")
        raise IsolatedFailure(f"{what} is corrupt: reading it stopped {reader} ({how})"
                              ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if kind == "result":
        return body  # type: ignore[no-any-return]
    if kind == "raised":
        raise _rebuilt(*body)
    if kind == "memory":
        raise IsolatedFailure(f"reading {what} needed more than {bounds.memory_mb} MB of "
                              f"memory; it was stopped")
    raise IsolatedFailure(f"{what} could not be read: {body}")


def _context() -> multiprocessing.context.ForkServerContext:
    """Forkserver: a child starts in milliseconds with the readers imported (a child
    re-imports its parent's main module: preloaded, that costs nothing), and no thread of the
    API is forked. A process that already runs a forkserver (a worker's model processes,
    simulation_worker.process) keeps its preload: a child imports its reader on first use."""
    context = multiprocessing.get_context("forkserver")
    main = getattr(sys.modules.get("__main__"), "__spec__", None)
    context.set_forkserver_preload(
        [main.name if main is not None and main.name else "__main__", *_PRELOAD])
    return context


def _child(out: Connection, target: Callable[..., Any], args: tuple[Any, ...],
           memory_mb: int | None, expected: tuple[type[BaseException], ...]) -> None:
    """The child: bound its address space, run the reader, send what came of it."""
    try:
        if memory_mb is not None:
            limit = _address_space() + memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        out.send(("result", target(*args)))
    except MemoryError:
        out.send(("memory", None))
    except expected as error:
        out.send(("raised", (type(error), error.args, vars(error))))
    except Exception as error:  # anything else the file makes the reader raise
        out.send(("failed", f"{type(error).__name__}: {error}"))
    finally:
        out.close()


def _address_space() -> int:
    """This process's virtual memory size in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
             ) -> BaseException:
    """The child's exception as raised there (its __init__ may take other arguments than
    its args, so it is not called)."""
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(state)
    return error
