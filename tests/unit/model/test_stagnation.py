"""A run that stops making progress ends as "stalled", not at the iteration limit."""

from __future__ import annotations

import re

import numpy as np
import pytest

from simulation_worker.model import AssignmentSettings, TntpCase, bush, frank_wolfe, run_model
from simulation_worker.model.assignment import NO_GAIN, STALL_WINDOWS, Stagnation
from simulation_worker.model.cli import main
from tests.unit.model.conftest import network_folder
from tests.unit.model.independent import relative_gap


def test_a_gap_that_keeps_halving_never_stalls() -> None:
    rule = Stagnation(1e-12, "b")
    assert not any(rule.stalled(0.1 * 0.9**k) for k in range(200))


def test_a_flat_gap_stalls_after_one_window() -> None:
    rule = Stagnation(1e-6, "b")
    window = STALL_WINDOWS["b"]
    verdicts = [rule.stalled(1e-3 * (1 - 1e-3 * k)) for k in range(3 * window)]
    assert verdicts.index(True) == window


def test_reaching_the_target_is_never_a_stall() -> None:
    rule = Stagnation(1e-3, "b")
    for _ in range(STALL_WINDOWS["b"] * 2):
        assert not rule.stalled(1e-3)


def _frank_wolfe(case: TntpCase, gap: float, limit: int) -> AssignmentSettings:
    return AssignmentSettings(algorithm="fw", relative_gap=gap, max_iterations=limit)


def test_frank_wolfe_on_sioux_falls_stalls_long_before_the_limit(sioux_falls: TntpCase) -> None:
    # Frank-Wolfe's gap falls as 1/iterations: halving it takes as many iterations again.
    result = run_model(sioux_falls.model_input(assignment=_frank_wolfe(sioux_falls, 1e-8, 5000)))
    assert (result.outcome, result.converged, result.fallback) == ("stalled", False, None)
    assert result.iterations < 2500
    assert result.message == (f"stalled at gap {result.relative_gap:.2e} after "
                              f"{result.iterations} iterations")
    assert 1e-8 < result.relative_gap < 1e-2


def test_iteration_limit_is_its_own_outcome(sioux_falls: TntpCase) -> None:
    result = run_model(sioux_falls.model_input(assignment=_frank_wolfe(sioux_falls, 1e-8, 5)))
    assert (result.outcome, result.iterations) == ("iteration_limit", 5)
    assert result.message.startswith("iteration limit reached at gap ")


def test_cli_exits_3_saying_stalled(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "run", "--network", str(network_folder("SiouxFalls")),
                 "--algorithm", "fw", "--gap", "1e-8", "--max-iter", "5000"])
    err = capsys.readouterr().err
    assert code == 3
    assert re.fullmatch(r"cartolog model run: stalled at gap \S+ after \d+ iterations\n", err)


def test_stalled_algorithm_b_continues_with_bfw_from_its_flows(
        sioux_falls: TntpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    # An Algorithm B whose iterations change nothing: it stalls at its starting gap.
    monkeypatch.setattr(bush, "reshape_then_shift", lambda *args: None)
    monkeypatch.setattr(bush, "shift_flows", lambda *args: None)
    seen: list[tuple[int, float]] = []
    settings = AssignmentSettings(relative_gap=1e-4, max_iterations=2000)
    result = run_model(sioux_falls.model_input(assignment=settings),
                       progress=lambda i, g, t: seen.append((i, g)))
    window = STALL_WINDOWS["b"]
    flat = [gap for _, gap in seen[:window + 1]]
    assert flat == [flat[0]] * (window + 1)
    # Bi-conjugate Frank-Wolfe numbers its iterations on and starts at B's gap (B measured it
    # on the graph with series links merged: equal up to rounding). B's first iteration is
    # not measured (decision 0127): its reports start at iteration 2.
    assert seen[window + 1][0] == window + 3
    assert seen[window + 1][1] == pytest.approx(flat[0], rel=1e-12)
    assert [i for i, _ in seen] == list(range(2, len(seen) + 2))
    assert (result.outcome, result.fallback, result.converged) == ("converged", "bfw", True)
    assert result.message.endswith("(Algorithm B stalled; continued with bfw from its flows)")
    flows = np.asarray(result.links.flow)
    assert relative_gap(sioux_falls.network, sioux_falls.zones, sioux_falls.trips, flows) <= 1e-4


def test_a_fallback_that_does_not_improve_keeps_algorithm_bs_flows(
        sioux_falls: TntpCase, monkeypatch: pytest.MonkeyPatch) -> None:
    # Decision 0135: B stalls at its start; a fallback that ends no better than where B stopped
    # (here: it hands B's flows back unchanged, after some iterations) leaves B's result.
    monkeypatch.setattr(bush, "reshape_then_shift", lambda *args: None)
    monkeypatch.setattr(bush, "shift_flows", lambda *args: None)
    handed: list[np.ndarray] = []

    def no_better(*args: object, start: np.ndarray, done: int, **kwargs: object
                  ) -> tuple[np.ndarray, int, bool]:
        handed.append(start)
        return start.copy(), done + 7, False  # as if the iteration limit stopped it

    monkeypatch.setattr(frank_wolfe, "solve", no_better)
    settings = AssignmentSettings(relative_gap=1e-4, max_iterations=2000)
    result = run_model(sioux_falls.model_input(assignment=settings))
    assert (result.outcome, result.fallback, result.converged) == ("stalled", NO_GAIN, False)
    assert result.message.endswith("did not improve them: Algorithm B's flows kept)")
    window = STALL_WINDOWS["b"]
    assert result.iterations == window + 2 + 7
    flows = np.asarray(result.links.flow)
    gap = relative_gap(sioux_falls.network, sioux_falls.zones, sioux_falls.trips, flows)
    assert gap == pytest.approx(result.relative_gap, rel=1e-9) and gap > 1e-4
    assert len(handed) == 1
