"""Skims equal independent shortest paths (scipy) at the run's final costs."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import openmatrix as omx
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from simulation_worker.model import AssignmentSettings, CostParameters, load_tntp_folder, run_model
from simulation_worker.model.classes import VehicleClass, assign_classes
from simulation_worker.model.indicators import link_times
from simulation_worker.model.network import ModelInput
from simulation_worker.model.skims import class_skims, result_skims, skims, write_omx

SIOUX_FALLS = Path(__file__).resolve().parents[2] / "data" / "networks" / "SiouxFalls"
WINNIPEG = SIOUX_FALLS.parent / "Winnipeg"


def scipy_skims(model: ModelInput, flows: np.ndarray, cost: np.ndarray | None = None,
                banned: np.ndarray | None = None, tie: float = 0.0) -> dict[str, np.ndarray]:
    """Least-cost paths by scipy, with no path through a zone node (first-thru-node rule):
    a zone node keeps only its own outgoing links when it is the origin; no banned link.
    ``tie`` (+1 or -1) breaks exact ties between least-cost paths towards the shortest or
    the longest distance (the paths are chosen at ``cost + tie * 1e-9 * length``; the costs
    reported are still those at ``cost``)."""
    net = model.network
    position = {int(n): i for i, n in enumerate(net.node_ids)}
    tail = np.array([position[int(n)] for n in net.link_from])
    head = np.array([position[int(n)] for n in net.link_to])
    times = link_times(model, flows)
    if cost is None:
        cost = times + model.costs.toll_factor * net.toll + \
            model.costs.distance_factor * net.length
    allowed = np.ones(net.n_links, dtype=bool) if banned is None else ~banned
    out = {m: np.zeros((len(model.zones), len(model.zones))) for m in ("time", "distance", "cost")}
    blocked = net.link_from < net.first_thru_node
    weight = cost + tie * 1e-9 * net.length
    for i, zone in enumerate(model.zones):
        origin = position[zone.centroid]
        keep = net.link_open & allowed & (~blocked | (tail == origin))
        # Of parallel links only the cheapest (a sparse matrix would add their costs up).
        link_of: dict[tuple[int, int], int] = {}
        for k in np.flatnonzero(keep)[np.argsort(-weight[keep], kind="stable")]:
            link_of[int(tail[k]), int(head[k])] = int(k)
        cheapest = np.array(sorted(link_of.values()), dtype=np.int64)
        graph = csr_matrix((weight[cheapest], (tail[cheapest], head[cheapest])),
                           shape=(net.n_nodes, net.n_nodes))
        dist, pred = dijkstra(graph, indices=origin, return_predecessors=True)
        if tie:
            dist = np.full_like(dist, np.nan)
        for j, destination in enumerate(model.zones):
            node = position[destination.centroid]
            out["cost"][i, j] = dist[node]
            while node != origin:
                k = link_of[(int(pred[node]), node)]
                out["time"][i, j] += times[k]
                out["distance"][i, j] += net.length[k]
                node = int(pred[node])
    return out


def test_skims_equal_scipy_shortest_paths_at_the_converged_costs() -> None:
    case = load_tntp_folder(SIOUX_FALLS)
    model = case.model_input(CostParameters(toll_factor=0.0, distance_factor=0.05),
                             AssignmentSettings(algorithm="b", relative_gap=1e-6))
    result = run_model(model)
    found = skims(model, result.links.flow)
    expected = scipy_skims(model, result.links.flow)
    for measure, table in expected.items():
        np.testing.assert_allclose(found.tables[("all", measure)], table, rtol=1e-9,
                                   err_msg=measure)
    np.testing.assert_allclose(found.tables[("all", "cost")], result.cost_skim, rtol=1e-9)
    from_result = result_skims(model, result)
    for key, table in found.tables.items():
        np.testing.assert_allclose(from_result.tables[key], table, rtol=1e-12, err_msg=str(key))


def test_skims_omx_reads_back_in_openmatrix_with_zone_ids() -> None:
    case = load_tntp_folder(SIOUX_FALLS)
    model = case.model_input(CostParameters(), AssignmentSettings(relative_gap=1e-4))
    found = skims(model, run_model(model).links.flow)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "skims.omx"
        path.write_bytes(write_omx(found))
        handle = omx.open_file(str(path), "r")
        try:
            assert sorted(handle.list_matrices()) == ["all_cost", "all_distance", "all_time"]
            assert handle.mapping("zone") == {z.id: i for i, z in enumerate(model.zones)}
            np.testing.assert_array_equal(np.array(handle["all_time"]),
                                          found.tables[("all", "time")])
        finally:
            handle.close()


def test_model_run_writes_skims_to_an_omx_file(tmp_path: Path) -> None:
    from simulation_worker.model.cli import main

    path = tmp_path / "skims.omx"
    assert main(["model", "run", "--network", str(SIOUX_FALLS), "--gap", "1e-4",
                 "--skims", str(path)]) == 0
    handle = omx.open_file(str(path), "r")
    try:
        assert sorted(handle.list_matrices()) == ["all_cost", "all_distance", "all_time"]
        assert sorted(handle.mapping("zone")) == list(range(1, 25))
        time = np.array(handle["all_time"])
        assert time.shape == (24, 24) and np.all(np.diag(time) == 0)
        assert np.all(time[~np.eye(24, dtype=bool)] > 0)
    finally:
        handle.close()


def test_class_skims_equal_scipy_per_class_with_the_truck_ban_respected() -> None:
    case = load_tntp_folder(WINNIPEG)
    model = case.model_input(CostParameters(), AssignmentSettings(relative_gap=1e-3))
    assert model.network.first_thru_node > 1  # zone nodes are never passed through
    net = model.network
    thru = (net.link_from >= net.first_thru_node) & (net.link_to >= net.first_thru_node)
    banned = np.zeros(net.n_links, dtype=bool)
    banned[np.random.default_rng(7).choice(np.flatnonzero(thru), 25, replace=False)] = True
    types = net.link_type.copy()
    types[banned] = 9
    model = replace(model, network=replace(net, link_type=types))
    trips = np.asarray(model.demand.trips)  # type: ignore[union-attr]
    classes = (VehicleClass("car"),
               VehicleClass("truck", pce=2.5, value_of_time=2.0, distance_factor=1.0,
                            allowed_link_types=(1,)))
    equilibrium = assign_classes(model, {"car": trips, "truck": 0.05 * trips}, classes)
    assert np.all(equilibrium.class_flows["truck"][banned] == 0.0)
    found = class_skims(model, equilibrium)
    truck_cost = equilibrium.link_times + net.length / 2.0
    for name, cost, ban in (("car", equilibrium.link_times, None),
                            ("truck", truck_cost, banned)):
        expected = scipy_skims(model, equilibrium.pce_flows, cost, ban)
        np.testing.assert_allclose(found.tables[(name, "cost")], expected["cost"], rtol=1e-9,
                                   err_msg=f"{name} cost")
        # Constant-cost links make exact ties between least-cost paths of different length:
        # time and distance must be those of one of the tied paths (between the extremes).
        short = scipy_skims(model, equilibrium.pce_flows, cost, ban, tie=1.0)
        long = scipy_skims(model, equilibrium.pce_flows, cost, ban, tie=-1.0)
        for measure in ("time", "distance"):
            low = np.minimum.reduce([expected[measure], short[measure], long[measure]])
            high = np.maximum.reduce([expected[measure], short[measure], long[measure]])
            ours = found.tables[(name, measure)]
            assert np.all(ours >= low - 1e-9 * np.abs(low)), f"{name} {measure}"
            assert np.all(ours <= high + 1e-9 * np.abs(high)), f"{name} {measure}"
            assert np.mean(np.isclose(ours, expected[measure], rtol=1e-9)) > 0.99
