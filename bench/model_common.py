"""Helpers for bench/model.py: the cases, each side's child process, the grid city."""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulation_worker.model.network import FloatArray, Network

AEQUILIBRAE_VERSION = "1.7.2"
# Free-flow time given to zero-time links for AequilibraE, which refuses zero.
TINY_TIME = 1e-6


@contextlib.contextmanager
def class_exchange_rules(on: bool) -> Iterator[None]:
    """Run the multi-class Algorithm B with decision 0145's exchanges and stagnation window,
    or (``on`` False) with the rules from before it; restored afterwards."""
    from simulation_worker.model import classes as multi

    rules = multi.EXCHANGE, multi.STALL_RULE
    multi.EXCHANGE, multi.STALL_RULE = (True, "b-classes") if on else (False, "b")
    try:
        yield
    finally:
        multi.EXCHANGE, multi.STALL_RULE = rules


def ensure_aequilibrae() -> Any:
    """Import AequilibraE, installing the pinned version into this venv on first use."""
    try:
        return importlib.import_module("aequilibrae")
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", f"aequilibrae=={AEQUILIBRAE_VERSION}"],
            stdout=sys.stderr,
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


def grid_city(rows: int = 64, cols: int = 63, zones: int = 2000, seed: int = 7) -> Any:
    """A synthetic grid city: ``rows`` x ``cols`` intersections 0.5 km apart, every 8th street
    an arterial, ``zones`` centroids each tied to a distinct intersection by a two-way
    connector, lognormal population and jobs denser towards the centre, gravity demand.

    Returns a ``ModelInput`` (about 20,000 links with the default sizes).
    """
    from simulation_worker.model import (
        AssignmentSettings,
        GravityDemand,
        ModelInput,
        Zone,
        make_network,
    )

    rng = np.random.default_rng(seed)
    node = np.arange(rows * cols).reshape(rows, cols) + zones + 1
    frm: list[int] = []
    to: list[int] = []
    arterial: list[bool] = []
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((0, 1), (1, 0)):
                r2, c2 = r + dr, c + dc
                if r2 < rows and c2 < cols:
                    major = (r % 8 == 0) if dr == 0 else (c % 8 == 0)
                    frm += [node[r, c], node[r2, c2]]
                    to += [node[r2, c2], node[r, c]]
                    arterial += [major, major]
    street = len(frm)
    spots = rng.choice(rows * cols, size=zones, replace=False)
    for z, spot in enumerate(spots, start=1):
        frm += [z, int(node.flat[spot])]
        to += [int(node.flat[spot]), z]
    major = np.array(arterial + [False] * (len(frm) - street))
    connector = np.arange(len(frm)) >= street
    length = np.where(connector, 0.2, 0.5)
    speed = np.where(major, 60.0, np.where(connector, 30.0, 40.0))
    capacity = np.where(major, 3000.0, np.where(connector, 99999.0, 1200.0))
    net = make_network(np.array(frm), np.array(to), capacity, length, length / speed * 60.0,
                       bpr_b=np.where(connector, 0.0, 0.15), bpr_power=4.0,
                       first_thru_node=zones + 1)
    rr, cc = np.divmod(spots, cols)
    centre = np.hypot(rr - rows / 2, cc - cols / 2) / (rows / 2)
    population = rng.lognormal(6.5, 0.5, zones)
    jobs = rng.lognormal(6.0, 0.8, zones) * np.exp(-1.5 * centre) * 3
    zone_list = tuple(Zone(z, z, float(population[z - 1]), float(jobs[z - 1]))
                      for z in range(1, zones + 1))
    return ModelInput(network=net, zones=zone_list,
                      demand=GravityDemand(trip_rate=0.35, beta=0.08),
                      assignment=AssignmentSettings(relative_gap=1e-4, max_iterations=500))


REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"winnipeg": REPO / "tests" / "data" / "networks" / "Winnipeg",
           "berlin_mpfc": REPO / "tests" / "data" / "networks" / "BerlinMPFC",
           "berlin_center": REPO / "bench" / "data" / "BerlinCenter",
           "chicago_sketch": REPO / "tests" / "data" / "networks" / "ChicagoSketch",
           "sioux_falls_power_12": REPO / "tests" / "data" / "networks" / "SiouxFalls"}
# cases whose network's BPR power is replaced on every link: steep costs (decision 0141)
POWERS = {"sioux_falls_power_12": 12.0}


def load_case(case: str) -> tuple[Any, FloatArray]:
    """(ModelInput with an explicit OD matrix, that matrix) of a bench case."""
    from simulation_worker.model import ExplicitDemand, ModelInput, load_tntp_folder

    if case == "grid_city":
        return _grid_with_trips()
    tntp = load_tntp_folder(FOLDERS[case])  # large files are stored gzipped: it reads them
    model = tntp.model_input()
    network = model.network
    if case in POWERS:
        network = replace(network, bpr_power=np.full(network.n_links, POWERS[case]))
    return ModelInput(network=network, zones=model.zones,
                      demand=ExplicitDemand(tntp.trips)), tntp.trips


def _grid_with_trips() -> tuple[Any, FloatArray]:
    """The grid city with its gravity OD matrix on free-flow costs, as explicit demand."""
    from simulation_worker.model import CostParameters, ExplicitDemand, ModelInput
    from simulation_worker.model.costs import link_costs
    from simulation_worker.model.graph import build_graph
    from simulation_worker.model.gravity import gravity
    from simulation_worker.model.network import GravityDemand
    from simulation_worker.model.paths import zone_costs

    model = grid_city()
    graph = build_graph(model.network, model.zones, CostParameters())
    assert isinstance(model.demand, GravityDemand)
    trips = gravity(model.zones, zone_costs(graph, link_costs(graph, np.zeros(graph.n_links))),
                    model.demand).trips
    return ModelInput(network=model.network, zones=model.zones,
                      demand=ExplicitDemand(trips)), trips


def child_main(side: str, case: str, gap_text: str, cores_text: str) -> None:
    """Run one side on one case to one gap and print its figures as one JSON line."""
    from simulation_worker.model import AssignmentSettings, ModelInput, run_model

    gap, cores = float(gap_text), int(cores_text)
    model, trips = load_case(case)
    if side == "cartolog":
        settings = AssignmentSettings(relative_gap=gap, max_iterations=2000)
        model = ModelInput(network=model.network, zones=model.zones, demand=model.demand,
                           assignment=settings)
        started = time.perf_counter()
        result = run_model(model)
        seconds = time.perf_counter() - started
        flows, iterations, reached = result.links.flow, result.iterations, result.relative_gap
        outcome: str | None = result.outcome
    else:
        run = run_aequilibrae(model.network, trips, [z.centroid for z in model.zones], gap,
                              20000, cores)
        seconds, flows = run.seconds, run.flows
        iterations, reached = run.iterations, run.relative_gap
        outcome = None
    print(json.dumps({
        "seconds": seconds, "iterations": iterations, "relative_gap": reached,
        "outcome": outcome, "objective": _objective(model, flows),
        "zones": len(model.zones), "links": model.network.n_links,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))
    gc.freeze()  # as `cartolog model run` ends (docs/decisions/0134), on both sides


def _objective(model: Any, flows: FloatArray) -> float:
    from simulation_worker.model.costs import beckmann_objective
    from simulation_worker.model.graph import build_graph

    graph = build_graph(model.network, model.zones, model.costs)
    return beckmann_objective(graph, np.asarray(flows)[graph.link_index])
