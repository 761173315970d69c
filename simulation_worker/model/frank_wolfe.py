"""Frank-Wolfe and bi-conjugate Frank-Wolfe (placeholder, filled in below)."""

from __future__ import annotations

from collections.abc import Callable

from simulation_worker.model.graph import Graph
from simulation_worker.model.network import AssignmentSettings, FloatArray


def solve(
    graph: Graph,
    od: FloatArray,
    settings: AssignmentSettings,
    report: Callable[[int, float, float], None],
    started: float,
) -> tuple[FloatArray, int]:
    raise NotImplementedError
