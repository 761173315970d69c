"""Two vehicle classes on Winnipeg: Cartolog's multi-class assignment beside AequilibraE 1.7.2's
multi-class assignment to the same relative gap, in the same run; and the cost of a
select-link analysis.

Cars carry 90% of the Winnipeg trips, trucks 10% with PCE 2.5 and are banned from one link
type (a seeded 5% of the links between thru nodes is given type 2). AequilibraE's classes
share one graph, so its trucks pay a fixed cost of 1e6 on those links instead. Both sides
assign from scratch once each (one run per side: the figures are single measurements on a
shared machine; only their ratios mean much).

Figures: seconds to the gap (Cartolog's multi-class Algorithm B, or ``--algorithm fw``;
AequilibraE bi-conjugate Frank-Wolfe, all cores, as baseline); the largest relative difference
of total PCE flow on links with flow > 10 (target 1e-3), between the two sides, and, as its
noise floor, between two Cartolog solutions at the same gap (classes assigned in the other
order) and between Cartolog at the gap and at ``--reference-gap``; the same differences on the
links whose travel time rises by at least 1% of t0 at their flow (on Winnipeg 1,176 of 2,836
links have b = 0 and many more a b of 1e-11, so their flows are barely determined by
equilibrium); the largest relative difference of link travel time between the two Cartolog
solutions with the classes in either order, beside their largest flow difference, with the link
where the flows differ most on stderr (``swapped_classes_witness``): equal times with unequal
flows show two equilibria of the same costs, so no solver's flows can be expected to match
another's there (decision 0138); a run with one selected link beside the same run without
(target: at most 1.3x; best of three alternating runs each).

    .venv/bin/python -m bench.model_classes [--gap 1e-4] [--quick] [--algorithm b|fw]
        [--reference-gap 1e-9] [--skip-aequilibrae]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.model_common import TINY_TIME, ensure_aequilibrae  # noqa: E402
from simulation_worker.model import AssignmentSettings, CostParameters, load_tntp_folder  # noqa: E402
from simulation_worker.model.classes import VehicleClass, assign_classes  # noqa: E402
from simulation_worker.model.indicators import link_times  # noqa: E402
from simulation_worker.model.network import ModelInput, Network  # noqa: E402
from simulation_worker.model.select_link import LinkSelection  # noqa: E402

WINNIPEG = REPO / "tests" / "data" / "networks" / "Winnipeg"
TRUCK_PCE = 2.5
TRUCK_SHARE = 0.1
BAN_COST = 1e6  # AequilibraE's classes share one graph: trucks pay this on banned links


def two_class_case(gap: float, algorithm: str = "b"
                   ) -> tuple[ModelInput, dict[str, np.ndarray], np.ndarray]:
    """Winnipeg with link type 2 on a seeded 5% of thru links; car and truck demand."""
    settings = AssignmentSettings(algorithm=algorithm, relative_gap=gap,
                                  max_iterations=20000 if algorithm == "fw" else 1000)
    model = load_tntp_folder(WINNIPEG).model_input(CostParameters(), settings)
    net = model.network
    thru = np.flatnonzero((net.link_from >= net.first_thru_node)
                          & (net.link_to >= net.first_thru_node))
    banned = np.zeros(net.n_links, dtype=bool)
    banned[np.random.default_rng(11).choice(thru, len(thru) // 20, replace=False)] = True
    model = replace(model, network=replace(net, link_type=np.where(banned, 2, 1)))
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    return model, {"car": (1 - TRUCK_SHARE) * trips, "truck": TRUCK_SHARE * trips}, banned


CLASSES = (VehicleClass("car"),
           VehicleClass("truck", pce=TRUCK_PCE, allowed_link_types=(1,)))


def run_cartolog(model: ModelInput, demand: dict[str, np.ndarray],
                 selections: tuple[LinkSelection, ...] = (),
                 classes: tuple[VehicleClass, ...] = CLASSES) -> tuple[float, np.ndarray, float]:
    started = time.perf_counter()
    result = assign_classes(model, demand, classes, selections=selections)
    return time.perf_counter() - started, result.pce_flows, result.relative_gap


def worst_difference(ours: np.ndarray, theirs: np.ndarray, links: np.ndarray) -> float:
    """Largest |ours - theirs| / max(ours, theirs) over ``links`` carrying more than 10 on
    either side."""
    big = links & ((ours > 10) | (theirs > 10))
    return float(np.max(np.abs(ours[big] - theirs[big]) / np.maximum(ours[big], theirs[big])))


def rising(model: ModelInput, flows: np.ndarray) -> np.ndarray:
    """Links whose travel time at ``flows`` exceeds free flow by at least 1% (t0 b (x/c)^p)."""
    net = model.network
    with np.errstate(over="ignore", invalid="ignore"):
        rise = net.bpr_b * (flows / net.capacity) ** net.bpr_power
    return np.asarray(rise >= 0.01)


def _graph(net: Network, banned: np.ndarray, centroids: np.ndarray) -> Any:
    import pandas as pd
    from aequilibrae.paths import Graph

    frame = pd.DataFrame({
        "link_id": net.link_ids, "a_node": net.link_from, "b_node": net.link_to,
        "direction": np.ones(net.n_links, dtype=np.int8),
        "free_flow_time": np.where(net.free_flow_time > 0, net.free_flow_time, TINY_TIME),
        "capacity": net.capacity, "b": net.bpr_b,
        "power": np.where(net.bpr_b == 0, 1.0, net.bpr_power),
        "ban": np.where(banned, BAN_COST, 0.0)})
    graph = Graph()
    graph.network = frame
    graph.prepare_graph(centroids)
    graph.set_graph("free_flow_time")
    graph.set_skimming([])
    graph.set_blocked_centroid_flows(bool(net.first_thru_node > 1))
    return graph


def _matrix(name: str, centroids: np.ndarray, trips: np.ndarray) -> Any:
    from aequilibrae.matrix import AequilibraeMatrix

    matrix = AequilibraeMatrix()
    matrix.create_empty(zones=len(centroids), matrix_names=[name], memory_only=True)
    matrix.index[:] = centroids
    matrix.matrices[:, :, 0] = trips
    matrix.computational_view([name])
    return matrix


def run_aequilibrae(model: ModelInput, demand: dict[str, np.ndarray], banned: np.ndarray,
                    gap: float) -> tuple[float, np.ndarray, float]:
    ensure_aequilibrae()
    from aequilibrae.paths import TrafficAssignment, TrafficClass

    net = model.network
    centroids = np.array([z.centroid for z in model.zones], dtype=np.int64)
    graph = _graph(net, banned, centroids)
    cars = TrafficClass("car", graph, _matrix("car", centroids, demand["car"]))
    trucks = TrafficClass("truck", graph, _matrix("truck", centroids, demand["truck"]))
    trucks.set_pce(TRUCK_PCE)
    trucks.set_fixed_cost("ban", 1.0)
    assignment = TrafficAssignment()
    assignment.set_classes([cars, trucks])
    assignment.set_vdf("BPR")
    assignment.set_vdf_parameters({"alpha": "b", "beta": "power"})
    assignment.set_capacity_field("capacity")
    assignment.set_time_field("free_flow_time")
    assignment.set_algorithm("bfw")
    assignment.max_iter = 20000
    assignment.rgap_target = gap
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        assignment.execute()
    seconds = time.perf_counter() - started
    results = assignment.results()
    flows = results["PCE_tot"].reindex(net.link_ids).fillna(0.0).to_numpy(dtype=np.float64)
    return seconds, flows, float(assignment.assignment.rgap)


def non_uniqueness_witness(model: ModelInput, ours: np.ndarray, other: np.ndarray
                           ) -> tuple[dict[str, Any], float]:
    """Where two solutions to the same gap differ most (flow > 10), and how far apart their
    link travel times are anywhere (largest relative difference over every link). Equal times
    mean equal path costs for every class: both are equilibria of the same costs, and the flows
    that differ can move only where a link's cost does not depend on its flow."""
    net = model.network
    big = (ours > 10) | (other > 10)
    spread = np.where(big, np.abs(ours - other) / np.maximum(np.maximum(ours, other), 1e-300), 0)
    link = int(np.argmax(spread))
    times, other_times = link_times(model, ours), link_times(model, other)
    time_spread = float(np.max(np.abs(times - other_times) / np.maximum(times, other_times)))
    constant = (net.bpr_b == 0) | (net.bpr_power == 0)
    moved = np.abs(ours - other) > 1e-3
    return {"link": link, "tail": int(net.link_from[link]), "head": int(net.link_to[link]),
            "flows": [float(ours[link]), float(other[link])],
            "t0": float(net.free_flow_time[link]), "b": float(net.bpr_b[link]),
            "cost_is_constant": bool(constant[link]),
            "links_moved_by_more_than_1e-3": int(moved.sum()),
            "of_them_constant_cost": int((moved & constant).sum()),
            "largest_move_on_a_flow_dependent_link": float(
                np.max(np.abs(ours - other)[~constant], initial=0.0))}, time_spread


def _difference(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": "1", "baseline": "target",
            "baseline_value": 1e-3, "ratio": value / 1e-3, "higher_is_better": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gap", type=float, default=1e-4)
    parser.add_argument("--quick", action="store_true", help="gap 1e-3")
    parser.add_argument("--algorithm", choices=("b", "fw"), default="b")
    parser.add_argument("--reference-gap", type=float, default=1e-9)
    parser.add_argument("--skip-aequilibrae", action="store_true")
    args = parser.parse_args()
    gap = 1e-3 if args.quick else args.gap
    model, demand, banned = two_class_case(gap, args.algorithm)
    assign_classes(model, demand, CLASSES, AssignmentSettings(max_iterations=2))  # numba warm-up
    ours, our_flows, our_gap = run_cartolog(model, demand)
    busiest = int(np.argmax(our_flows))
    selection = (LinkSelection("busiest", (busiest,)),)
    plain, selected = ours, run_cartolog(model, demand, selection)[0]
    for _ in range(2):  # select-link ratio: the best of three alternating runs each
        plain = min(plain, run_cartolog(model, demand)[0])
        selected = min(selected, run_cartolog(model, demand, selection)[0])
    _, swapped_flows, swapped_gap = run_cartolog(model, demand, classes=CLASSES[::-1])
    reference, _, _ = two_class_case(args.reference_gap, "b")
    _, exact_flows, exact_gap = run_cartolog(reference, demand)
    steep = rising(model, exact_flows)
    every = np.ones_like(steep)
    figures: list[dict[str, Any]] = []
    witness, time_spread = non_uniqueness_witness(model, our_flows, swapped_flows)
    sides: dict[str, Any] = {"gap": gap, "algorithm": args.algorithm, "cartolog_gap": our_gap,
                             "cartolog_swapped_gap": swapped_gap, "reference_gap": exact_gap,
                             "rising_links": int(steep.sum()), "links": int(steep.size),
                             "swapped_classes_witness": witness}
    compared = {"Cartolog vs Cartolog with the classes swapped, same gap": swapped_flows,
                "Cartolog vs Cartolog at the reference gap": exact_flows}
    if not args.skip_aequilibrae:
        theirs, their_flows, their_gap = run_aequilibrae(model, demand, banned, gap)
        sides["aequilibrae_gap"] = their_gap
        figures.append({"name": f"winnipeg 2 classes to {gap:g}", "value": ours, "unit": "s",
                        "baseline": "AequilibraE 1.7.2 multi-class bfw",
                        "baseline_value": theirs, "ratio": ours / theirs,
                        "higher_is_better": False})
        compared = {"Cartolog vs AequilibraE": their_flows, **compared}
    for label, other in compared.items():
        figures.append(_difference(f"max rel. PCE flow difference, {label} (flow > 10)",
                                   worst_difference(our_flows, other, every)))
        figures.append(_difference(f"the same on links whose time rises >= 1% ({label})",
                                   worst_difference(our_flows, other, steep)))
    if not args.skip_aequilibrae:
        figures.append(_difference(
            "AequilibraE vs Cartolog at the reference gap, links whose time rises >= 1%",
            worst_difference(their_flows, exact_flows, steep)))
    figures.append({  # equal costs, unequal flows: the flows are not determined there
        "name": "max rel. link travel-time difference, Cartolog vs Cartolog with the classes "
                "swapped (every link)", "value": time_spread, "unit": "1",
        "baseline": "their max rel. PCE flow difference (flow > 10)",
        "baseline_value": worst_difference(our_flows, swapped_flows, every),
        "ratio": time_spread / max(worst_difference(our_flows, swapped_flows, every), 1e-300),
        "higher_is_better": False})
    figures += [
        {"name": "run with one selected link (best of 3)", "value": selected, "unit": "s",
         "baseline": "same run without (best of 3)", "baseline_value": plain,
         "ratio": selected / plain, "higher_is_better": False},
    ]
    print(json.dumps({"bench": "model_classes", **sides}), file=sys.stderr)
    print(json.dumps({"bench": "model_classes", "figures": figures}))


if __name__ == "__main__":
    main()
