"""The kernels' cache follows every source of the model package (decision 0118)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numba
import pytest

import simulation_worker.model  # noqa: F401  (sets the cache directory)
from simulation_worker.model import _kernel_cache


def test_the_cache_directory_is_named_after_the_sources() -> None:
    assert Path(numba.config.CACHE_DIR).name == f"kernels-{_kernel_cache.sources_digest()}"


def test_a_change_to_any_source_names_a_new_cache(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for source in Path(_kernel_cache.__file__).parent.glob("*.py"):
        shutil.copy(source, tmp_path / source.name)
    monkeypatch.setattr(_kernel_cache, "_HERE", tmp_path)
    before = _kernel_cache.sources_digest()
    assert before == _kernel_cache.sources_digest()
    paths = tmp_path / "paths.py"  # the callee of another file's kernel
    paths.write_text(paths.read_text() + "\n# changed\n")
    assert _kernel_cache.sources_digest() != before
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    previous = numba.config.CACHE_DIR
    try:
        _kernel_cache.use_kernel_cache_of_these_sources()
        expected = tmp_path / "cache" / f"kernels-{_kernel_cache.sources_digest()}"
        assert str(expected) == numba.config.CACHE_DIR
    finally:
        numba.config.CACHE_DIR = previous
