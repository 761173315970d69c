"""A bush link's flow at or below rounding noise is no flow (decisions 0139, 0140): a link
kept for 1e-16 vehicles can bar the only link of a cheaper path from the bush for good."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from simulation_worker.model import AssignmentSettings, CostParameters, bush, load_tntp_folder
from simulation_worker.model.run import run_model

BERLIN_CENTER = Path(__file__).resolve().parents[3] / "bench" / "data" / "BerlinCenter"


def test_a_move_that_empties_a_path_leaves_no_residue_on_it() -> None:
    flows = np.array([0.1 + 0.2, 0.3, 5.0])  # 0.30000000000000004: one ulp above the move
    x = flows.copy()
    c, d = np.zeros((1, 3)), np.zeros(3)
    ones = np.ones(3)
    segment = np.array([0, 1, 2], dtype=np.int32)
    noise = bush.noise(np.array([5.3]))[0]  # the bush's origin sends 5.3 trips
    bush._move(segment, 3, -0.3, 1.0, np.arange(3, dtype=np.int32), flows, x, c, d, ones,
               ones, ones * 4.0, ones, np.zeros((1, 3)), noise)
    assert flows[0] == 0.0 and flows[1] == 0.0  # 5.6e-17 left on the first was noise
    assert flows[2] == 4.7


def test_a_reshape_drops_noise_hanging_from_a_node_with_no_flow_in() -> None:
    """Chicago-Sketch (0140): emptying a path left 2e-16 on its last link and nothing on the
    link before, so no sweep could move it (its tail has no used path in). The link stayed
    in the bush and its long label barred a cheaper link for good."""
    tail = np.array([0, 1, 0], dtype=np.int32)  # 0->1, 1->2, 0->2
    head = np.array([1, 2, 2], dtype=np.int32)
    cost = np.array([1.0, 10.0, 1.0])
    links = np.array([0, 1, 2], dtype=np.int32)  # grouped by head in topological order
    flows = np.array([0.0, 2e-16, 1.0])
    lo, hi = np.zeros(3), np.zeros(3)
    lo_pred, hi_pred = np.zeros(3, dtype=np.int32), np.zeros(3, dtype=np.int32)
    kept = bush._labels(0, links, 3, head, tail, flows, cost, lo, lo_pred, hi, hi_pred,
                        float(bush.noise(np.array([1.0]))[0]))
    assert kept == 2 and list(links[:2]) == [0, 2]  # 0->1 stays: node 1's only way in
    assert list(flows[:2]) == [0.0, 1.0]
    assert hi[2] == 1.0  # not 11 through the noise on 1->2


def test_berlin_center_reaches_1e7_with_algorithm_b_alone(tmp_path: Path) -> None:
    """It used to stall near 2.7e-7 and hand over to bi-conjugate Frank-Wolfe."""
    for packed in BERLIN_CENTER.glob("*.tntp.gz"):
        with gzip.open(packed, "rb") as src, open(tmp_path / packed.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    case = load_tntp_folder(tmp_path)
    model = case.model_input(CostParameters(),
                             AssignmentSettings(relative_gap=1e-7, max_iterations=60))
    result = run_model(model)
    assert result.outcome == "converged" and result.fallback is None
    assert result.relative_gap <= 1e-7 and result.iterations <= 20
