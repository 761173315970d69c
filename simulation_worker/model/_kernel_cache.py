"""Compiled kernels are cached per version of the model's sources (decision 0118).

numba keys a cached kernel on its own source file only. A kernel that calls a kernel of another
file (``select_link._select`` calls ``paths.dijkstra``) keeps the old callee compiled in after
that other file changes: after a ``git pull`` the select-link analysis could follow other
shortest paths than the assignment it explains. The cache directory is therefore named after a
hash of every source file of this package, so a change to any of them starts a fresh cache.

The directory does not depend on where the sources are (numba's own locators file kernels
under a hash of their folder's path): every checkout and install of the same sources, as the
same user, shares one compiled copy, so a fresh clone of a version already compiled on the
machine starts warm (decision 0129). numba checks each kernel against its file's contents
and its own version before using it.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def sources_digest() -> str:
    """A short hash of this package's Python sources."""
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_base() -> str:
    """``$NUMBA_CACHE_DIR``, else the user's cache folder (``$XDG_CACHE_HOME`` or
    ``~/.cache``) ``/cartolog``."""
    explicit = os.environ.get("NUMBA_CACHE_DIR")
    if explicit:
        return explicit
    user = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(user, "cartolog")


def use_kernel_cache_of_these_sources() -> None:
    """Point numba's cache at ``cache_base()/kernels-<hash of the sources>`` and file this
    package's kernels there directly. Must run before any kernel module is imported."""
    import numba

    numba.config.CACHE_DIR = os.path.join(  # type: ignore[attr-defined]
        cache_base(), f"kernels-{sources_digest()}")
    numba.config.CACHE_LOCATOR_CLASSES = ",".join(  # type: ignore[attr-defined]
        [f"{__name__}.SourcesLocator", *_NUMBA_LOCATORS])


# numba's own locators, in its order: for kernels of other packages, and for ours where the
# cache folder cannot be written (then numba falls back to the package's __pycache__).
_NUMBA_LOCATORS = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator",
                   "IPythonCacheLocator", "ZipCacheLocator")


def _sources_locator() -> type:
    from numba.core.caching import UserProvidedCacheLocator

    class SourcesLocator(UserProvidedCacheLocator):
        """This package's kernels, straight in the cache folder (no per-path subfolder)."""

        def __init__(self, py_func: object, py_file: str) -> None:
            super().__init__(py_func, py_file)  # type: ignore[no-untyped-call]
            import numba

            self._cache_path = numba.config.CACHE_DIR  # type: ignore[attr-defined]

        @classmethod
        def from_function(cls, py_func: object, py_file: str) -> object:
            if Path(py_file).resolve().parent != _HERE:
                return None
            return super().from_function(py_func, py_file)  # type: ignore[no-untyped-call]

    return SourcesLocator


SourcesLocator = _sources_locator()


def skip_numba_blas_probe() -> None:
    """Load numba's NumPy support without its BLAS probe (decision 0136).

    On its first kernel, numba imports ``numba.np.arraymath``, which imports
    ``scipy.linalg.cython_blas`` only to learn whether ``np.dot`` and ``np.linalg`` may be
    compiled: 0.22 s of a 2.3 s Berlin-Center run, importing all of ``scipy.linalg``. The
    model's kernels use neither, so the probe is answered "no BLAS" by hiding that one module
    while numba loads; it is visible again right after, for any other code of the process.
    Does nothing if numba's NumPy support or SciPy's BLAS is already loaded."""
    probe = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or probe in sys.modules:
        return
    sys.modules[probe] = None  # type: ignore[assignment]  # import now raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get(probe, 0) is None:
            del sys.modules[probe]


use_kernel_cache_of_these_sources()
skip_numba_blas_probe()
