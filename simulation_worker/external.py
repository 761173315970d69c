"""External-command model adapter: run any executable on the job input as JSON.

The job input (schema ``cartolog.model-input/1``, see docs/model-io.md) goes to the command's
stdin; the command writes one JSON document (``cartolog.model-output/1``) to stdout and exits 0.
A timeout kills the command's whole process group; stderr is kept for the error message.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulation_worker.model.network import ExplicitDemand, ModelInput

INPUT_SCHEMA = "cartolog.model-input/1"
OUTPUT_SCHEMA = "cartolog.model-output/1"
_STDERR_TAIL = 2000


class ExternalModelError(RuntimeError):
    """The external model could not produce a usable result."""


class ExternalModelTimeout(ExternalModelError):
    """The command ran longer than its timeout and was killed."""


class ExternalModelFailed(ExternalModelError):
    """The command could not start or exited non-zero."""


class MalformedModelOutput(ExternalModelError):
    """The command's stdout is not a valid ``cartolog.model-output/1`` document."""


@dataclass(frozen=True)
class ExternalResult:
    """A validated external model result."""

    link_flows: dict[int, float]
    link_costs: dict[int, float]
    indicators: dict[str, float]
    document: dict[str, Any]


@dataclass(frozen=True)
class ExternalModel:
    """An executable (argv list) run once per job with a timeout in seconds."""

    command: Sequence[str]
    timeout_seconds: float = 3600.0
    env: Mapping[str, str] | None = None

    def run(self, job: Mapping[str, Any]) -> ExternalResult:
        """Run the command on ``job`` (an input document) and validate its output."""
        stdout = self._execute(json.dumps(job, allow_nan=False).encode())
        links = [link["id"] for link in job.get("network", {}).get("links", [])]
        return parse_output(stdout, set(links) if links else None)

    def _execute(self, payload: bytes) -> bytes:
        try:
            process = subprocess.Popen(
                list(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,
                env=dict(self.env) if self.env is not None else None,
            )
        except OSError as error:
            raise ExternalModelFailed(f"cannot start {self.command[0]!r}: {error}") from None
        try:
            stdout, stderr = process.communicate(payload, timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise ExternalModelTimeout(
                f"{self.command[0]!r} timed out after {self.timeout_seconds} s; "
                f"stderr: {_tail(stderr)}"
            ) from None
        if process.returncode != 0:
            raise ExternalModelFailed(
                f"{self.command[0]!r} exited with status {process.returncode}; "
                f"stderr: {_tail(stderr)}"
            )
        return stdout


def _tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    return text[-_STDERR_TAIL:] if text else "(empty)"


def parse_output(stdout: bytes, link_ids: set[int] | None = None) -> ExternalResult:
    """Validate a ``cartolog.model-output/1`` document; ``link_ids`` are the input's links."""
    try:
        document = json.loads(stdout)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedModelOutput(f"output is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedModelOutput("output must be a JSON object")
    if document.get("schema") != OUTPUT_SCHEMA:
        raise MalformedModelOutput(f"output 'schema' must be {OUTPUT_SCHEMA!r}")
    flows, costs = _links(document.get("links"), link_ids)
    return ExternalResult(flows, costs, _indicators(document.get("indicators", {})), document)


def _links(rows: object, link_ids: set[int] | None) -> tuple[dict[int, float], dict[int, float]]:
    if not isinstance(rows, list):
        raise MalformedModelOutput("output 'links' must be a list")
    flows: dict[int, float] = {}
    costs: dict[int, float] = {}
    for position, row in enumerate(rows):
        where = f"output links[{position}]"
        if not isinstance(row, dict):
            raise MalformedModelOutput(f"{where} must be an object")
        link_id = row.get("id")
        if not isinstance(link_id, int) or isinstance(link_id, bool):
            raise MalformedModelOutput(f"{where}: 'id' must be an integer")
        if link_ids is not None and link_id not in link_ids:
            raise MalformedModelOutput(f"{where}: unknown link id {link_id}")
        if link_id in flows:
            raise MalformedModelOutput(f"{where}: duplicate link id {link_id}")
        flows[link_id] = _number(row.get("flow"), f"{where}.flow", minimum=0.0)
        costs[link_id] = _number(row.get("cost"), f"{where}.cost")
    return flows, costs


def _indicators(values: object) -> dict[str, float]:
    if not isinstance(values, dict):
        raise MalformedModelOutput("output 'indicators' must be an object")
    return {str(k): _number(v, f"output indicators.{k}") for k, v in values.items()}


def _number(value: object, where: str, minimum: float | None = None) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MalformedModelOutput(f"{where} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise MalformedModelOutput(f"{where} must be finite")
    if minimum is not None and number < minimum:
        raise MalformedModelOutput(f"{where} must be >= {minimum}")
    return number


def input_document(model: ModelInput, input_hash: str) -> dict[str, Any]:
    """The ``cartolog.model-input/1`` document of a resolved model input."""
    net = model.network
    links = [
        {"id": int(net.link_ids[i]), "from": int(net.link_from[i]), "to": int(net.link_to[i]),
         "capacity": float(net.capacity[i]), "length": float(net.length[i]),
         "free_flow_time": float(net.free_flow_time[i]), "bpr_b": float(net.bpr_b[i]),
         "bpr_power": float(net.bpr_power[i]), "toll": float(net.toll[i]),
         "speed_kmh": float(net.speed_limit[i]), "lanes": float(net.lanes[i]),
         "type": int(net.link_type[i]), "open": bool(net.link_open[i])}
        for i in range(net.n_links)
    ]
    nodes = [{"id": int(n), "x": _maybe(net.node_x[i]), "y": _maybe(net.node_y[i])}
             for i, n in enumerate(net.node_ids)]
    zones = [{"id": z.id, "centroid": z.centroid, "population": z.population, "jobs": z.jobs,
              "polygon": [list(p) for p in z.polygon] if z.polygon else None}
             for z in model.zones]
    return {
        "schema": INPUT_SCHEMA,
        "input_hash": input_hash,
        "network": {"first_thru_node": net.first_thru_node, "nodes": nodes, "links": links},
        "zones": zones,
        "demand": _demand(model),
        "costs": vars(model.costs),
        "units": vars(model.units),
        "assignment": vars(model.assignment),
        "accessibility_minutes": model.accessibility_minutes,
    }


def _maybe(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _demand(model: ModelInput) -> dict[str, Any]:
    if isinstance(model.demand, ExplicitDemand):
        return {"kind": "explicit", "trips": model.demand.trips.tolist()}
    return {"kind": "gravity", **vars(model.demand)}
