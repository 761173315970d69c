"""Simulation runs: request (202 + Location, Idempotency-Key), status, cancel."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Response

from api.json_body import StrictJsonRoute
from api.reads import TenantReads
from api.routes.common import Writes
from api.schemas import SimulationCreate, SimulationPublic
from api.security import Editor, Services, Viewer
from domain.simulation import SimulationRun

router = APIRouter(prefix="/v1", tags=["simulations"], route_class=StrictJsonRoute)
TIMINGS = ("requested_at", "started_at", "finished_at", "duration_s")
QUEUE = ("queue_position", "expected_start_at")


@router.post("/scenarios/{scenario_id}/simulations", status_code=202,
             response_model=SimulationPublic)
def request_simulation(
    scenario_id: UUID, body: SimulationCreate, caller: Editor, services: Services,
    writes: Writes, response: Response,
    idempotency_key: Annotated[str | None, Header(
        max_length=200, description="Repeat with the same body to get the same run")] = None,
) -> SimulationPublic:
    """Request a run of a model on the scenario; poll the `Location` for its status."""
    run_id = services.app.request_simulation(
        caller.tenant, scenario_id, body.model, body.parameters, caller.actor,
        scenario_version=body.scenario_version, idempotency_key=idempotency_key)
    run = services.app.get_run(caller.tenant, run_id)
    writes.record(caller.tenant, run_id, run.version)
    response.headers["Location"] = f"/v1/simulations/{run_id}"
    return public(run, {})


@router.get("/simulations/{run_id}", response_model=SimulationPublic)
def get_simulation(run_id: UUID, caller: Viewer, services: Services) -> SimulationPublic:
    """Status, attempts, progress, timings and the last error of a run."""
    run = services.app.get_run(caller.tenant, run_id)
    read_model = timings(TenantReads(services.engine, caller.tenant), run_id)
    estimate = None if run.is_terminal or services.queue_estimate is None \
        else services.queue_estimate(run_id)
    if estimate is not None:
        read_model.update(queue_position=estimate.position,
                          expected_start_at=estimate.expected_start_at)
    return public(run, read_model)


@router.delete("/simulations/{run_id}", status_code=202, response_model=SimulationPublic)
def cancel_simulation(run_id: UUID, caller: Editor, services: Services,
                      writes: Writes) -> SimulationPublic:
    """Cancel a run that has not finished (409 when it has)."""
    services.app.cancel_run(caller.tenant, run_id, f"cancelled by {caller.sub}", caller.actor)
    run = services.app.get_run(caller.tenant, run_id)
    writes.record(caller.tenant, run_id, run.version)
    return public(run, timings(TenantReads(services.engine, caller.tenant), run_id))


def timings(reads: TenantReads, run_id: UUID) -> dict[str, Any]:
    """The run's timings from the read model (empty until it has the run)."""
    rows = reads.rows("SELECT requested_at, started_at, finished_at, duration_s "
                      "FROM simulation_runs WHERE tenant_id = :tenant AND run_id = :run",
                      run=run_id)
    return dict(rows[0]) if rows else {}


def public(run: SimulationRun, read_model: dict[str, Any]) -> SimulationPublic:
    """The response body of a run: its domain state plus read-model timings."""
    return SimulationPublic(
        id=run.id, scenario_id=run.scenario_id, scenario_version=run.scenario_version,
        model=run.model, parameters=run.parameters, status=run.status,
        status_detail=run.status_detail, attempt=run.attempt,
        max_attempts=run.max_attempts, attempts_allowed=run.attempts_allowed,
        progress=run.progress, last_error=run.last_error, result_sha256=run.result_sha256,
        indicators=run.indicators, worker=run.worker, version=run.version,
        **{k: read_model.get(k) for k in (*TIMINGS, *QUEUE)})
