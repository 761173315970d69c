"""Lanes: origins shared among threads (docs/decisions/0113)."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from simulation_worker.model import TntpCase, run_model
from simulation_worker.model.lanes import lanes, run_lanes
from simulation_worker.model.network import AssignmentSettings


def _record(lane: int, count: int, seen: list[tuple[int, int, str]], tag: str) -> None:
    seen.append((lane, count, threading.current_thread().name))
    assert tag == "args arrive"


def test_every_lane_runs_once_with_its_number() -> None:
    seen: list[tuple[int, int, str]] = []
    run_lanes(_record, 3, seen, "args arrive")
    assert sorted((lane, count) for lane, count, _ in seen) == [(0, 3), (1, 3), (2, 3)]
    assert {name for lane, _, name in seen if lane == 0} == {threading.current_thread().name}


def _fail_in_lane_one(lane: int, count: int) -> None:
    if lane == 1:
        raise ValueError("lane 1 failed")


def test_a_failing_lane_fails_the_call() -> None:
    with pytest.raises(ValueError, match="lane 1 failed"):
        run_lanes(_fail_in_lane_one, 2)


def test_lane_count_follows_numba_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from numba.np.ufunc import parallel

    monkeypatch.setattr(parallel, "_is_initialized", False)  # as before numba's threads start
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert lanes() == 3
    monkeypatch.delenv("NUMBA_NUM_THREADS")
    assert lanes() >= 1


def test_results_do_not_depend_on_the_number_of_lanes(
        sioux_falls: TntpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulation_worker.model import assignment, paths

    settings = AssignmentSettings(relative_gap=1e-6)
    results = []
    for count in (1, 2, 3):
        monkeypatch.setattr(assignment, "lanes", lambda count=count: count)
        monkeypatch.setattr(paths, "lanes", lambda count=count: count)
        results.append(run_model(sioux_falls.model_input(assignment=settings)))
    for other in results[1:]:
        assert np.array_equal(other.links.flow, results[0].links.flow)
        assert np.array_equal(other.cost_skim, results[0].cost_skim)
        assert other.iterations == results[0].iterations


def _count_lanes(lane: int, count: int, hits: list[int]) -> None:
    hits.append(lane)


def _lanes_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    hits: list[int] = []
    run_lanes(_count_lanes, 2, hits)
    queue.put(sorted(hits))


def test_a_forked_child_gets_its_own_lane_threads() -> None:
    run_lanes(_count_lanes, 2, [])  # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_lanes_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("run_lanes hung in a forked child")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [0, 1]


def test_each_kernel_compiles_for_one_signature(sioux_falls: TntpCase) -> None:
    # A second signature means a second compilation on a cold start (docs/decisions/0113).
    from simulation_worker.model import bush, costs, paths
    from simulation_worker.model.skims import result_skims

    model = sioux_falls.model_input()
    result = run_model(model)
    result_skims(model, result)
    run_model(sioux_falls.model_input(assignment=AssignmentSettings(algorithm="bfw",
                                                                   max_iterations=3)))
    for kernel in (paths.trees_lane, bush._bush_lane, costs.sum_flows):
        assert len(kernel.signatures) == 1, kernel


def test_lane_count_follows_numba_set_num_threads() -> None:
    # A worker caps the model's threads with numba.set_num_threads (decision 0314).
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert lanes() == 1
    finally:
        numba.set_num_threads(before)


def test_the_reshape_shift_pipeline_gives_the_sequential_result(
        winnipeg: TntpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    # Decision 0120: re-shaping the next bushes while earlier ones shift changes nothing.
    from simulation_worker.model import assignment, bush, paths

    settings = AssignmentSettings(relative_gap=1e-6)
    monkeypatch.setattr(bush, "_CHUNK", 16)  # Winnipeg's 147 origins in ten stages
    monkeypatch.setattr(bush, "_PIECE", 3)
    results = []
    for count in (1, 2):  # one lane: every re-shape, then every shift
        monkeypatch.setattr(assignment, "lanes", lambda count=count: count)
        monkeypatch.setattr(paths, "lanes", lambda count=count: count)
        results.append(run_model(winnipeg.model_input(assignment=settings)))
    assert results[0].iterations == results[1].iterations > 5
    assert np.array_equal(results[0].links.flow, results[1].links.flow)
