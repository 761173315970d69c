"""Compile the assignment's kernels on two processes when numba's cache lacks them (0143).

A run finds its compiled kernels in numba's cache (``_kernel_cache``), put there by
provisioning (0121) or by an earlier run of the same sources. Without them, numba compiles
them one after the other in the process that needs them: about 7 s of a 2-core machine's time,
almost all of it numba's own typing and lowering in Python, which holds the GIL. The kernels
are independent functions, though, each cached in its own file, and a kernel that calls
another one loads the callee from the cache if it is there. So ``compile_kernels`` compiles
them ahead, split in two:

- a helper process (``python -c`` calling ``compile_group(HELPER)``) compiles ``HELPER``'s
  kernels into the cache;
- this process compiles ``HERE``'s meanwhile, waits for the helper, then compiles ``LAST``,
  which calls kernels of both groups and loads the helper's from the cache.

Each kernel is compiled for the one signature every run gives it (``signatures``;
``tests/unit/model/test_compile_ahead.py`` checks that a run then compiles nothing). A kernel
the helper did not compile, whatever the reason (it failed, was killed, timed out), is compiled
here when first called, as it always was: the helper can only save time. A stamp file in the
cache folder records that this version's kernels are compiled, so later runs do nothing here.
One CPU (or ``NUMBA_NUM_THREADS=1``, or ``CARTOLOG_MODEL_THREADS=1`` in a worker): no helper,
the kernels compile here one after the other.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numba as nb
from numba import types

from simulation_worker.model import bush, costs, paths
from simulation_worker.model.lanes import lanes

STAMP = ".assignment-kernels"
HELPER_TIMEOUT_S = 300.0

# Kernels by name: the helper's, this process's while the helper runs, and those compiled
# after it (they call kernels of both groups). The split balances the two processes' work
# on a 2-core machine, the helper's start (about 0.5 s) included.
HELPER = ("shift_pass", "sum_flows", "pce_sums")
HERE = ("update_bush", "trees_lane")
LAST = ("bush_lane",)

_done = False
_lock = threading.Lock()


def signatures() -> dict[str, tuple[Any, tuple[types.Type, ...]]]:
    """Each kernel and the argument types every run calls it with."""
    i32, i64, f64, flag = types.int32, types.int64, types.float64, types.boolean
    ints, floats, flags, marks = (types.int32[::1], types.float64[::1], types.boolean[::1],
                                  types.uint8[::1])
    int_rows, float_rows = types.int32[:, ::1], types.float64[:, ::1]
    trees = nb.typeof(paths.NO_TREES)  # type: ignore[no-untyped-call]
    work = nb.typeof(paths.work(1, 1))  # type: ignore[no-untyped-call]
    scratch = nb.typeof(bush.scratch(1, 1, 1, 1))  # type: ignore[no-untyped-call]
    cost_arrays = (floats, floats, floats, floats)  # free-flow time, BPR b, power, capacity
    return {
        "update_bush": (bush._update_bush, (
            i32, ints, i32, ints, i32, ints, ints, ints, ints, flags, marks, floats,
            floats, floats, ints, floats, ints, ints, ints, floats, ints, i64, ints, ints,
            marks, f64)),
        "shift_pass": (bush._shift_pass, (
            i32, ints, i32, ints, ints, floats, floats, float_rows, floats, i32, f64,
            *cost_arrays, float_rows, f64, floats, ints, floats, ints, ints, ints, ints,
            f64, i32, float_rows, int_rows, int_rows, floats, floats)),
        "bush_lane": (bush._bush_lane, (
            i64, i64, i64, i64, flag, float_rows, ints, ints, ints, ints, ints, ints, flags,
            *cost_arrays, float_rows, trees, floats, float_rows, floats, i64, f64, flag,
            floats, scratch, ints, floats, i64, ints, floats, int_rows)),
        "pce_sums": (bush._pce_sums, (
            float_rows, int_rows, ints, ints, floats, floats, float_rows, floats,
            *cost_arrays, float_rows)),
        "sum_flows": (costs.sum_flows, (
            float_rows, int_rows, ints, floats, floats, floats, *cost_arrays, floats)),
        "trees_lane": (paths.trees_lane, (
            i64, i64, ints, ints, float_rows, ints, ints, ints, ints, floats, floats, flags,
            work, float_rows, float_rows, trees, int_rows)),
    }


def stamp() -> Path:
    """The file that says this version's assignment kernels are in the cache."""
    return Path(nb.config.CACHE_DIR) / STAMP  # type: ignore[attr-defined]


def compile_kernels() -> None:
    """Have the assignment's kernels compiled (or loaded) before a run calls them: on two
    processes if the cache lacks them. Returns at once after the first call, or if the stamp
    says they are cached."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        if (not stamp().exists() and not nb.config.DISABLE_JIT  # type: ignore[attr-defined]
                and _writable(stamp().parent)):
            _compile_cold()
        _done = True


def _writable(folder: Path) -> bool:
    """Whether the cache folder can be created and written. If not, numba caches in the
    package's ``__pycache__`` (0129) and no stamp can say so: every run would start a helper
    only to load kernels, so the kernels are left to compile or load when first called."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _compile_cold() -> None:
    helper = _start_helper() if lanes() > 1 else None
    compile_group(HERE if helper else HERE + HELPER)
    if helper is not None:
        try:
            helper.wait(timeout=HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
    compile_group(LAST)
    with contextlib.suppress(OSError):  # a folder made read-only meanwhile: compiled anyway
        stamp().write_text("compiled\n")


def _start_helper() -> subprocess.Popen[bytes] | None:
    """The helper process, compiling ``HELPER`` into the cache; None if it cannot start."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    try:
        code = f"from {__name__} import compile_group; compile_group({HELPER!r})"
        return subprocess.Popen([sys.executable, "-c", code], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def compile_group(names: tuple[str, ...]) -> None:
    """Compile (or load from the cache) the named kernels for their signatures."""
    known = signatures()
    for name in names:
        kernel, argument_types = known[name]
        kernel.compile(argument_types)
