"""Compile the built-in model's kernels into numba's on-disk cache, once per version of its
sources (decision 0121). Provisioning runs it, so the first `cartolog model run` or job after
an install or an update loads compiled code instead of compiling for several seconds.

    .venv/bin/python -m simulation_worker.precompile
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba

import simulation_worker.model  # noqa: F401  (points numba's cache at this version's sources)

STAMP = ".compiled"


def cache_stamp() -> Path:
    """The file that says this version's kernels are in the cache."""
    return Path(numba.config.CACHE_DIR) / STAMP  # type: ignore[attr-defined]


def main() -> int:
    stamp = cache_stamp()
    if stamp.exists():
        return 0
    from simulation_worker.child import warm_up

    print("[provision] compiling the model's kernels (once per version of its sources)",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    warm_up()  # the job path: Algorithm B, gravity demand, skims
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(f"compiled in {time.perf_counter() - started:.1f} s\n")
    except OSError:  # numba cached in the package instead (0129): compile again next time
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
