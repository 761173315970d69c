"""SimulationRun: one request to run a model on a scenario version, and its attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain import rules
from domain.base import TenantAggregate
from domain.errors import InvalidCommand, InvalidTransition
from domain.values import Actor

QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
COMPLETED, DEAD_LETTERED, CANCELLED = "completed", "dead_lettered", "cancelled"
TERMINAL = frozenset({COMPLETED, DEAD_LETTERED, CANCELLED})
MODELS = ("builtin", "external")


class SimulationRun(TenantAggregate):
    """Status moves queued → running → (retrying → running)* → one terminal state."""

    class Requested(TenantAggregate.Created):
        scenario_id: UUID
        scenario_version: int
        model: str
        parameters: dict[str, Any]
        max_attempts: int
        idempotency_key: str | None

    def __init__(
        self, tenant_id: str, scenario_id: UUID, scenario_version: int, model: str,
        parameters: dict[str, Any], max_attempts: int, idempotency_key: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.scenario_id = scenario_id
        self.scenario_version = scenario_version
        self.model = model
        self.parameters = parameters
        self.max_attempts = max_attempts
        self.idempotency_key = idempotency_key
        self.status = QUEUED
        self.attempt = 0
        self.attempts_allowed = max_attempts
        self.last_error: str | None = None
        self.result_sha256: str | None = None
        self.indicators: dict[str, float] = {}
        self.worker: str | None = None
        self.last_failed_at: datetime | None = None
        self.progress: dict[str, float] = {}
        self.reused_from: str | None = None

    @classmethod
    def request(
        cls, run_id: UUID, tenant_id: str, scenario_id: UUID, scenario_version: int,
        model: str, parameters: dict[str, Any], by: Actor, max_attempts: int = 3,
        idempotency_key: str | None = None,
    ) -> SimulationRun:
        """Request a run of `model` on the scenario at `scenario_version`."""
        if model not in MODELS:
            raise InvalidCommand(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        found = rules.collect(
            rules.integer_problem("max_attempts", max_attempts, 1, 20),
            None if idempotency_key is None else rules.id_problem(
                "an Idempotency-Key", idempotency_key))
        found += rules.parameters_problems(model, parameters)
        if found:
            raise InvalidCommand("the simulation request was rejected", found)
        return cls._start(
            cls.Requested, run_id, tenant_id, by, scenario_id=scenario_id,
            scenario_version=scenario_version, model=model, parameters=parameters,
            max_attempts=max_attempts, idempotency_key=idempotency_key,
        )

    class Started(TenantAggregate.Event):
        attempt: int
        worker: str

        def apply(self, run: SimulationRun) -> None:
            run.status = RUNNING
            run.attempt = self.attempt
            run.worker = self.worker
            run.progress = {}

    class ProgressReported(TenantAggregate.Event):
        attempt: int
        iteration: int
        relative_gap: float
        elapsed_s: float

        def apply(self, run: SimulationRun) -> None:
            run.progress = {"iteration": self.iteration, "relative_gap": self.relative_gap,
                            "elapsed_s": self.elapsed_s}

    class AttemptFailed(TenantAggregate.Event):
        attempt: int
        error: str
        traceback: str

        def apply(self, run: SimulationRun) -> None:
            run.status = RETRYING
            run.last_error = self.error
            run.last_failed_at = self.timestamp

    class Completed(TenantAggregate.Event):
        """v2 added `reused_from`: the run whose stored result this one reuses (or None)."""

        class_version = 2
        attempt: int
        result_sha256: str
        indicators: dict[str, float]
        duration_s: float
        reused_from: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reused_from"] = None

        def apply(self, run: SimulationRun) -> None:
            run.status = COMPLETED
            run.result_sha256 = self.result_sha256
            run.indicators = self.indicators
            run.reused_from = self.reused_from

    class DeadLettered(TenantAggregate.Event):
        attempt: int
        error: str
        traceback: str

        def apply(self, run: SimulationRun) -> None:
            run.status = DEAD_LETTERED
            run.last_error = self.error

    class Cancelled(TenantAggregate.Event):
        reason: str

        def apply(self, run: SimulationRun) -> None:
            run.status = CANCELLED

    class Redriven(TenantAggregate.Event):
        extra_attempts: int

        def apply(self, run: SimulationRun) -> None:
            run.status = QUEUED
            run.attempts_allowed = run.attempt + self.extra_attempts

    @property
    def status_detail(self) -> str | None:
        """How a completed built-in run's assignment ended, from its indicators: "converged",
        "stalled" or "iteration limit reached" "at gap G after N iterations"."""
        found = self.indicators
        if self.status != COMPLETED or "converged" not in found or "relative_gap" not in found:
            return None
        head = ("converged" if found["converged"] else "stalled" if found.get("stalled")
                else "iteration limit reached")
        text = f"{head} at gap {found['relative_gap']:.2e} after {found.get('iterations', 0):.0f}"
        text += " iterations"
        if found.get("fallback_bfw"):
            text += " (Algorithm B stalled; continued with bfw from its flows)"
        if found.get("unassigned_pairs"):
            text += (f"; {found.get('unassigned_trips', 0):.6g} trips in "
                     f"{found['unassigned_pairs']:.0f} OD pairs had no path and were not "
                     "assigned")
        return text

    @property
    def is_terminal(self) -> bool:
        """Completed, dead-lettered or cancelled: nothing changes it any more."""
        return self.status in TERMINAL

    def start(self, attempt: int, worker: str, by: Actor) -> None:
        """A worker took attempt `attempt`: the next one, or the running one whose worker
        was lost (its lease expired and the job was redelivered)."""
        if self.status == RUNNING and attempt == self.attempt:
            self._emit(SimulationRun.Started, by, attempt=attempt, worker=worker)
            return
        if self.status not in (QUEUED, RETRYING) or attempt != self.attempt + 1:
            raise InvalidTransition(
                f"run {self.id} is {self.status} at attempt {self.attempt}; "
                f"cannot start attempt {attempt}"
            )
        if attempt > self.attempts_allowed:
            raise InvalidTransition(f"run {self.id} has no attempts left")
        self._emit(SimulationRun.Started, by, attempt=attempt, worker=worker)

    def fail_attempt(self, attempt: int, error: str, traceback: str, by: Actor) -> None:
        """The current attempt failed; dead-letter the run when no attempt is left."""
        self._check_current(attempt)
        self._emit(SimulationRun.AttemptFailed, by, attempt=attempt, error=error,
                   traceback=traceback)
        if attempt >= self.attempts_allowed:
            self._emit(SimulationRun.DeadLettered, by, attempt=attempt, error=error,
                       traceback=traceback)

    def report_progress(self, attempt: int, iteration: int, relative_gap: float,
                        elapsed_s: float, by: Actor) -> None:
        """The running attempt's model reached `iteration` at `relative_gap`."""
        self._check_current(attempt)
        self._emit(SimulationRun.ProgressReported, by, attempt=attempt, iteration=iteration,
                   relative_gap=relative_gap, elapsed_s=elapsed_s)

    def complete(
        self, attempt: int, result_sha256: str, indicators: dict[str, float],
        duration_s: float, by: Actor, reused_from: str | None = None,
    ) -> None:
        """The current attempt produced a result, stored under `result_sha256` (or reused
        the result of run `reused_from` for the same input, model and parameters)."""
        self._check_current(attempt)
        self._emit(SimulationRun.Completed, by, attempt=attempt, result_sha256=result_sha256,
                   indicators=indicators, duration_s=duration_s, reused_from=reused_from)

    def cancel(self, reason: str, by: Actor) -> None:
        """Cancel a run that has not finished."""
        if self.is_terminal:
            raise InvalidTransition(f"run {self.id} is already {self.status}")
        self._emit(SimulationRun.Cancelled, by, reason=reason)

    def redrive(self, by: Actor) -> None:
        """Give a dead-lettered run a fresh set of attempts."""
        if self.status != DEAD_LETTERED:
            raise InvalidTransition(f"run {self.id} is {self.status}, not dead-lettered")
        self._emit(SimulationRun.Redriven, by, extra_attempts=self.max_attempts)

    def _check_current(self, attempt: int) -> None:
        if self.status != RUNNING or attempt != self.attempt:
            raise InvalidTransition(
                f"run {self.id} is {self.status} at attempt {self.attempt}; "
                f"result of attempt {attempt} is stale"
            )
