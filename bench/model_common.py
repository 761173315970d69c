"""Helpers for bench/model.py: the AequilibraE side and the synthetic grid city."""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulation_worker.model.network import FloatArray, Network

AEQUILIBRAE_VERSION = "1.7.2"
# Free-flow time given to zero-time links for AequilibraE, which refuses zero (see issue 3).
TINY_TIME = 1e-6


def ensure_aequilibrae() -> Any:
    """Import AequilibraE, installing the pinned version into this venv on first use."""
    try:
        return importlib.import_module("aequilibrae")
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", f"aequilibrae=={AEQUILIBRAE_VERSION}"],
            check=True,
        )
        return importlib.import_module("aequilibrae")


@dataclass(frozen=True)
class BaselineRun:
    seconds: float
    iterations: int
    relative_gap: float
    flows: FloatArray


def run_aequilibrae(net: Network, trips: FloatArray, zone_nodes: list[int], gap: float,
                    max_iter: int, cores: int) -> BaselineRun:
    """Bi-conjugate Frank-Wolfe in AequilibraE; flows come back in network link order."""
    ensure_aequilibrae()
    import pandas as pd
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    fft = np.where(net.free_flow_time > 0, net.free_flow_time, TINY_TIME)
    power = np.where(net.bpr_b == 0, 1.0, net.bpr_power)
    frame = pd.DataFrame({
        "link_id": net.link_ids, "a_node": net.link_from, "b_node": net.link_to,
        "direction": np.ones(net.n_links, dtype=np.int8), "free_flow_time": fft,
        "capacity": net.capacity, "b": net.bpr_b, "power": power,
    })
    graph = Graph()
    graph.network = frame
    centroids = np.array(zone_nodes, dtype=np.int64)
    graph.prepare_graph(centroids)
    graph.set_graph("free_flow_time")
    graph.set_skimming([])
    graph.set_blocked_centroid_flows(bool(net.first_thru_node > 1))
    matrix = AequilibraeMatrix()
    matrix.create_empty(zones=len(zone_nodes), matrix_names=["demand"], memory_only=True)
    matrix.index[:] = centroids
    matrix.matrices[:, :, 0] = trips
    matrix.computational_view(["demand"])
    assignment = TrafficAssignment()
    assignment.set_classes([TrafficClass("car", graph, matrix)])
    assignment.set_vdf("BPR")
    assignment.set_vdf_parameters({"alpha": "b", "beta": "power"})
    assignment.set_capacity_field("capacity")
    assignment.set_time_field("free_flow_time")
    assignment.set_algorithm("bfw")
    assignment.set_cores(cores)
    assignment.max_iter = max_iter
    assignment.rgap_target = gap
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # AequilibraE's tqdm progress bars
        assignment.execute()
    seconds = time.perf_counter() - started
    results = assignment.results()
    flows = results["demand_ab"].reindex(net.link_ids).fillna(0.0).to_numpy(dtype=np.float64)
    return BaselineRun(seconds, int(assignment.assignment.iter), float(assignment.assignment.rgap),
                       flows)
