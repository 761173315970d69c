"""Provisioning compiles the model's kernels once per version of its sources (decision 0121)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _precompile(cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulation_worker.precompile"], cwd=REPO,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
                          capture_output=True, text=True, timeout=600, check=True)


def test_kernels_are_compiled_into_the_cache_once(tmp_path: Path) -> None:
    first = _precompile(tmp_path)
    assert "compiling the model's kernels" in first.stderr
    [version] = tmp_path.glob("kernels-*")
    assert (version / ".compiled").exists()
    cached = {p.name.split("-")[0] for p in version.rglob("*.nbi")}
    assert {"paths.trees_lane", "bush._bush_lane", "costs.sum_flows"} <= cached
    second = _precompile(tmp_path)
    assert second.stderr == ""  # already compiled: nothing to do
