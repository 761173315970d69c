"""The model's first kernel does not import SciPy's BLAS for numba's probe (decision 0136)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_SCRIPT = """
import json, sys
import numpy as np
from simulation_worker.model import load_tntp_folder, run_model
result = run_model(load_tntp_folder(sys.argv[1]).model_input())
loaded = "scipy.linalg" in sys.modules
import scipy.linalg.cython_blas  # still importable by anyone who needs it
from numba.np import arraymath
print(json.dumps({"gap": result.relative_gap, "scipy_linalg_loaded": loaded,
                  "numba_blas": arraymath._HAVE_BLAS, "flow": float(np.sum(result.links.flow))}))
"""


def test_a_run_leaves_scipy_linalg_unloaded_and_importable() -> None:
    folder = REPO / "tests" / "data" / "networks" / "SiouxFalls"
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["scipy_linalg_loaded"] is False
    assert out["numba_blas"] is False
    assert out["gap"] <= 1e-4
    assert out["flow"] > 0
