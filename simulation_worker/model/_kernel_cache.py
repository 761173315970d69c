"""Compiled kernels are cached per version of the model's sources (decision 0118).

numba keys a cached kernel on its own source file only. A kernel that calls a kernel of another
file (``select_link._select`` calls ``paths.dijkstra``) keeps the old callee compiled in after
that other file changes: after a ``git pull`` the select-link analysis could follow other
shortest paths than the assignment it explains. The cache directory is therefore named after a
hash of every source file of this package, so a change to any of them starts a fresh cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sources_digest() -> str:
    """A short hash of this package's Python sources."""
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_kernel_cache_of_these_sources() -> None:
    """Point numba's cache at ``$NUMBA_CACHE_DIR`` (default: this package's ``__pycache__``)
    ``/kernels-<hash of the sources>``. Must run before any kernel module is imported."""
    import numba

    base = os.environ.get("NUMBA_CACHE_DIR") or str(_HERE / "__pycache__")
    numba.config.CACHE_DIR = os.path.join(  # type: ignore[attr-defined]
        base, f"kernels-{sources_digest()}")


use_kernel_cache_of_these_sources()
