"""Change versus convergence noise, on Sioux Falls solved to a relative gap of 1e-3."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from api.convergence import RunLinks, bounds, classify
from simulation_worker.model import TntpCase
from simulation_worker.model.edits import CloseLink, apply_edits
from simulation_worker.model.network import AssignmentSettings, ModelInput
from simulation_worker.model.run import ModelResult, run_model

GAP = 1e-3


def solved(model: ModelInput, algorithm: str) -> ModelResult:
    assignment = AssignmentSettings(algorithm=algorithm, relative_gap=GAP)  # type: ignore[arg-type]
    return run_model(replace(model, assignment=assignment))


def run_links(model: ModelInput, result: ModelResult) -> RunLinks:
    net = model.network
    return RunLinks(np.nan_to_num(result.links.flow), net.free_flow_time, net.bpr_b,
                    net.bpr_power, net.capacity, ~net.link_open, result.relative_gap)


def test_same_scenario_from_different_starts_has_no_significant_change(
        sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input()
    first, second = solved(model, "fw"), solved(model, "bfw")
    assert first.relative_gap <= GAP and second.relative_gap <= GAP
    a, b = run_links(model, first), run_links(model, second)
    assert np.max(np.abs(a.flow - b.flow)) > 1.0  # the two solutions do differ
    found = classify(a, b)
    assert int(found.significant.sum()) == 0
    assert int(found.certain.sum()) == 0


def test_a_closure_marks_the_closed_link_and_its_main_alternatives(
        sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input()
    before = solved(model, "fw")
    loaded = int(np.argmax(before.links.flow))
    closed_model = apply_edits(model, [CloseLink(int(model.network.link_ids[loaded]))])
    after = solved(closed_model, "bfw")
    a, b = run_links(model, before), run_links(closed_model, after)
    found = classify(a, b)
    gains = np.argsort(-(b.flow - a.flow))[:4]
    assert found.significant[loaded] and found.certain[loaded]
    assert all(found.significant[i] for i in gains), [(i, b.flow[i] - a.flow[i]) for i in gains]
    assert 4 < int(found.significant.sum()) < a.flow.size


def test_the_noise_interval_holds_the_run_and_shrinks_with_the_gap(
        sioux_falls: TntpCase) -> None:
    model = sioux_falls.model_input()
    run = run_links(model, solved(model, "fw"))
    wide, narrow = bounds(run), bounds(replace(run, relative_gap=run.relative_gap / 100))
    assert np.all(wide.noise_low <= run.flow) and np.all(run.flow <= wide.noise_high)
    assert np.all(wide.certain_high >= wide.noise_high)
    assert np.all(narrow.noise_high - narrow.noise_low <= wide.noise_high - wide.noise_low)
    assert np.allclose(bounds(replace(run, relative_gap=0.0)).noise_high, run.flow, rtol=1e-6)
