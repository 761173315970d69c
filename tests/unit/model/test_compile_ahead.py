"""With an empty numba cache, the assignment's kernels compile on two processes, for the
signatures every run uses (decision 0143)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NETWORKS = REPO / "tests" / "data" / "networks"

# In a fresh process with an empty cache: compile ahead, then run every assignment path and
# record what numba still compiles (a kernel whose declared signature is not the one a run
# gives it is compiled again here), and where each kernel came from: compiled in this
# process or loaded from the cache, after compiling ahead ("ahead") and after the runs.
_SCRIPT = """
import json, sys
from dataclasses import replace
import numpy as np
from numba.core import event
from simulation_worker.model import AssignmentSettings, load_tntp_folder, run_model
from simulation_worker.model import compile_ahead
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.network import GravityDemand
from simulation_worker.model.skims import result_skims

compile_ahead.compile_kernels()
kernels = compile_ahead.signatures()

def origin():
    return {name: {"compiled": sum(k.stats.cache_misses.values()),
                   "loaded": sum(k.stats.cache_hits.values())}
            for name, (k, _) in kernels.items()}

ahead = origin()
compiled_later = []

class Recorder(event.Listener):
    def on_start(self, e):
        compiled_later.append(e.data["dispatcher"].py_func.__qualname__)
    def on_end(self, e):
        pass

event.register("numba:compile", Recorder())
case = load_tntp_folder(sys.argv[1])
model = case.model_input()
one = run_model(model)
result_skims(model, one)
run_model(case.model_input(assignment=AssignmentSettings(algorithm="b", relative_gap=1e-6)))
trips = np.asarray(model.demand.trips)
types = model.network.link_type.copy()
types[[0, 3]] = 9
banned = replace(model, network=replace(model.network, link_type=types))
trucks = VehicleClass("truck", pce=2.5, distance_factor=0.1,
                      allowed_link_types=tuple(int(t) for t in set(types) - {9}))
two = assign_classes(banned, {"car": trips, "truck": 0.1 * trips},
                     (VehicleClass("car"), trucks),
                     AssignmentSettings(algorithm="b", relative_gap=1e-6))
print(json.dumps({"ahead": ahead, "origin": origin(), "compiled_later": compiled_later,
                  "gaps": [one.relative_gap, two.relative_gap],
                  "signatures": {name: len(k.signatures) for name, (k, _) in kernels.items()}}))
"""


def _cold_run(cache: Path, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(NETWORKS / "SiouxFalls")], cwd=REPO,
        env={**os.environ, "NUMBA_CACHE_DIR": str(cache), **env},
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_a_cold_cache_is_filled_by_two_processes_and_a_run_then_compiles_nothing(
        tmp_path: Path) -> None:
    out = _cold_run(tmp_path, NUMBA_NUM_THREADS="2")
    from simulation_worker.model import compile_ahead

    ahead, origin = out["ahead"], out["origin"]
    assert isinstance(ahead, dict) and isinstance(origin, dict)
    for name in compile_ahead.HERE + compile_ahead.LAST:
        assert ahead[name] == origin[name] == {"compiled": 1, "loaded": 0}, (name, origin)
    # The helper's kernels were never compiled here: loaded from the files it wrote, by
    # ``_bush_lane``'s compilation (``_shift_pass``) or when a run first called them.
    for name in compile_ahead.HELPER:
        assert origin[name] == {"compiled": 0, "loaded": 1}, (name, origin)
    assert ahead["shift_pass"] == {"compiled": 0, "loaded": 1}
    # Every assignment path (one class, skims, several classes with a ban) found its kernels
    # compiled for the signatures it uses: nothing of them was compiled again.
    later = out["compiled_later"]
    assert isinstance(later, list)
    ahead = {kernel.py_func.__qualname__ for kernel, _ in compile_ahead.signatures().values()}
    assert not ahead & set(later), later
    assert out["signatures"] == {name: 1 for name in origin}
    gaps = out["gaps"]
    assert isinstance(gaps, list) and max(gaps) <= 1e-4
    [version] = tmp_path.glob("kernels-*")
    assert (version / compile_ahead.STAMP).exists()


def test_with_one_lane_the_kernels_compile_here_without_a_helper(tmp_path: Path) -> None:
    out = _cold_run(tmp_path, NUMBA_NUM_THREADS="1")
    ahead = out["ahead"]
    assert isinstance(ahead, dict)
    assert all(o == {"compiled": 1, "loaded": 0} for o in ahead.values()), ahead
    later = out["compiled_later"]
    assert isinstance(later, list)
    assert not {"_bush_lane", "trees_lane", "sum_flows", "_pce_sums"} & set(later), later


def test_a_stamped_cache_is_left_to_load_lazily(tmp_path: Path) -> None:
    _cold_run(tmp_path, NUMBA_NUM_THREADS="2")
    again = _cold_run(tmp_path, NUMBA_NUM_THREADS="2")
    ahead, origin = again["ahead"], again["origin"]
    assert isinstance(ahead, dict) and isinstance(origin, dict)
    # Nothing compiled or loaded ahead: the runs load their kernels when they call them.
    assert all(o == {"compiled": 0, "loaded": 0} for o in ahead.values()), ahead
    assert all(o["compiled"] == 0 for o in origin.values()), origin
    assert again["compiled_later"] == []


def test_an_unwritable_cache_folder_gets_no_helper(tmp_path: Path) -> None:
    # A cache folder that cannot be created (here: below a file, which holds even for root):
    # numba caches in the package instead, no stamp can be written, so nothing is compiled
    # ahead; the run compiles or loads each kernel when it first calls it, as before 0143.
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = _cold_run(blocker / "cache", NUMBA_NUM_THREADS="2")
    ahead = out["ahead"]
    assert isinstance(ahead, dict)
    assert all(o == {"compiled": 0, "loaded": 0} for o in ahead.values()), ahead
    gaps = out["gaps"]
    assert isinstance(gaps, list) and max(gaps) <= 1e-4
