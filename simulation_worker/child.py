"""The model's own process: the worker's jobs' computations, isolated from the worker.

The worker starts ``serve`` through multiprocessing (forkserver) once, and keeps it for job
after job (decision 0312): it warms the model up (numba loads or compiles its code), says
``ready``, then computes each input it receives on ``jobs``. Three pipes: ``jobs`` carries
(input document, spec) to it; ``out`` carries ``ready``, progress and each job's outcome to
the worker; ``lifeline`` carries nothing, and reads end-of-file when the worker dies, however
it dies (kill -9 included). The process then kills what it started and exits, so no orphaned
model keeps computing. A job that must stop early (timeout, cancellation) has its process
killed; the worker starts a fresh one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

import numba
import numpy as np

from adapters.demand_matrix import DemandMatrix
from simulation_worker.class_run import run_classes
from simulation_worker.external import ExternalModel, ExternalResult, input_document
from simulation_worker.model import (
    ModelInput,
    ModelResult,
    ProgressCallback,
    content_hash,
    run_model,
)
from simulation_worker.model.skims import result_skims
from simulation_worker.model_input import RunInput, load

OUTPUT_SCHEMA = "cartolog.simulation-output/1"
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class ModelSpec:
    """Which model to run: "builtin", or "external" with its command and timeout."""

    kind: str
    command: tuple[str, ...] = ()
    timeout_s: float = 3600.0
    # The blob store's largest blob (CARTOLOG_BLOB_MAX_BYTES; 0: no limit). Skims or a
    # select-link matrix beyond it are left out of the run, which says why (decision 0316).
    max_blob_bytes: int = 0


@dataclass(frozen=True)
class Outcome:
    """What the child sends last: an output document and indicators, or an error."""

    ok: bool
    output: bytes = b""
    indicators: dict[str, float] | None = None
    compute_s: float = 0.0
    error: str = ""
    traceback: str = ""
    attachments: tuple[bytes, ...] = ()  # claim-check blobs the output names by sha256
    started_at: float = 0.0  # epoch seconds when the model process began this job


def serve(jobs: Connection, out: Connection, lifeline: Connection, warm: bool,
          threads: int = 0) -> None:
    """Entry point of the model process: warm up, then one job after another until the
    worker closes `jobs` (or dies). `threads` > 0 caps the model's numba threads."""
    threading.Thread(target=_watch_parent, args=(lifeline,), daemon=True).start()
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.perf_counter()
    if threads > 0:
        available: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
        numba.set_num_threads(min(threads, available))
    if warm:
        warm_up()
    out.send(("ready", time.perf_counter() - started))
    while True:
        try:
            document, spec = jobs.recv()
        except (EOFError, OSError):
            return
        out.send(("outcome", compute(document, spec, out)))


def warm_up() -> None:
    """Run the built-in model once on a tiny network, so that a job's first call finds its
    compiled code in this process instead of loading (or compiling) it from numba's cache.
    A failure here is not fatal: the first job then pays the load, and reports any error."""
    from simulation_worker.warm import warm_up_inputs

    for document in warm_up_inputs():
        with contextlib.suppress(Exception):
            _run(document, ModelSpec("builtin"), lambda *_: None)


def compute(document: bytes, spec: ModelSpec, out: Connection) -> Outcome:
    """One job's outcome: the output document and indicators, or the error."""
    started_at, started = time.time(), time.perf_counter()
    try:
        output, indicators, attachments = _run(document, spec, _Progress(out))
        outcome = Outcome(True, output, indicators, time.perf_counter() - started,
                          attachments=attachments, started_at=started_at)
    # Whatever the model raises is the attempt's error: report it, never crash silently.
    except Exception as error:
        outcome = Outcome(False, error=f"{type(error).__name__}: {error}",
                          traceback=traceback.format_exc(),
                          compute_s=time.perf_counter() - started, started_at=started_at)
    return outcome


class _Progress:
    """Sends (iteration, gap, elapsed) to the worker at most every PROGRESS_EVERY_S."""

    def __init__(self, out: Connection) -> None:
        self.out = out
        self.last = 0.0

    def __call__(self, iteration: int, gap: float, elapsed: float) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            self.out.send(("progress", (int(iteration), float(gap), float(elapsed))))


def _run(document: bytes, spec: ModelSpec, progress: ProgressCallback
         ) -> tuple[bytes, dict[str, float], tuple[bytes, ...]]:
    run_input = load(document)
    if spec.kind == "builtin" and run_input.classes:
        out = run_classes(run_input)
        kept = _Attachments(spec.max_blob_bytes)
        skims = kept.add("skims", out.skims)
        selected = {name: sha for name, blob in out.select_links.items()
                    if (sha := kept.add(f"select-link analysis {name!r}", blob)) is not None}
        output = _document(run_input.input_hash(), out.links, out.zones, out.indicators,
                           skims, selected, kept.omitted)
        return output, out.indicators, kept.blobs
    if spec.kind == "builtin":
        result = run_model(run_input.model, progress)
        kept = _Attachments(spec.max_blob_bytes)
        skims = kept.add("skims", skims_blob(run_input.model, result))
        output, indicators = _builtin_output(run_input, result, skims, kept.omitted)
        return output, indicators, kept.blobs
    model = ExternalModel(spec.command, timeout_seconds=spec.timeout_s)
    job = input_document(run_input.model, content_hash(run_input.model))
    return (*_external_output(run_input, model.run(job)), ())


class _Attachments:
    """A run's claim-check blobs that fit the blob store, and why the others were left out."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.blobs: tuple[bytes, ...] = ()
        self.omitted: dict[str, str] = {}

    def add(self, what: str, blob: bytes) -> str | None:
        """The blob's sha256 when it is kept; None when it is too large for the store."""
        if self.max_bytes and len(blob) > self.max_bytes:
            self.omitted[what] = (
                f"the {what} take {len(blob) / 2**20:.1f} MiB, more than the largest blob "
                f"the store accepts ({self.max_bytes / 2**20:.1f} MiB, "
                "CARTOLOG_BLOB_MAX_BYTES): the run was computed and stored without them")
            return None
        self.blobs = (*self.blobs, blob)
        return hashlib.sha256(blob).hexdigest()


def skims_blob(model: ModelInput, result: ModelResult) -> bytes:
    """The run's skims as a claim-check blob (``class_measure`` tables over the zones)."""
    found = result_skims(model, result)
    return DemandMatrix(found.zone_ids, found.named()).to_blob()


def _builtin_output(run_input: RunInput, result: ModelResult, skims_sha256: str | None,
                    omitted: dict[str, str] | None = None) -> tuple[bytes, dict[str, float]]:
    links = result.links
    rows = [{"id": name, "flow": _num(links.flow[i]), "time": _num(links.time[i]),
             "volume_capacity": _num(links.volume_capacity[i]),
             "generalized_cost": _num(links.generalized_cost[i])}
            for i, name in enumerate(run_input.link_names)]
    trips = np.asarray(result.trips)
    zones = [{"id": zone.id, "trips_from": _num(trips[i].sum()),
              "trips_to": _num(trips[:, i].sum()),
              "jobs_within_threshold": _num(result.jobs_within_threshold[i]),
              "logsum_accessibility": _num(result.logsum_accessibility[i])}
             for i, zone in enumerate(run_input.model.zones)]
    indicators = {k: float(v) for k, v in asdict(result.indicators).items()}
    indicators.update(relative_gap=float(result.relative_gap),
                      iterations=float(result.iterations),
                      converged=float(result.converged),
                      stalled=float(result.outcome == "stalled"),
                      fallback_bfw=float(result.fallback == "bfw"))
    if result.unassigned_pairs:
        indicators.update(unassigned_trips=float(result.unassigned_trips),
                          unassigned_pairs=float(result.unassigned_pairs))
    document = _document(result.input_hash, rows, zones, indicators, skims_sha256,
                         omitted=omitted)
    return document, indicators


def _external_output(run_input: RunInput, result: ExternalResult
                     ) -> tuple[bytes, dict[str, float]]:
    rows = [{"id": run_input.link_names[link_id - 1], "flow": flow,
             "generalized_cost": result.link_costs.get(link_id)}
            for link_id, flow in sorted(result.link_flows.items())]
    return (_document(content_hash(run_input.model), rows, [], result.indicators),
            result.indicators)


def _document(input_hash: str, links: list[dict[str, Any]], zones: list[dict[str, Any]],
              indicators: dict[str, float], skims_sha256: str | None = None,
              select_links: dict[str, str] | None = None,
              omitted: dict[str, str] | None = None) -> bytes:
    doc: dict[str, Any] = {"schema": OUTPUT_SCHEMA, "input_hash": input_hash, "links": links,
                           "zones": zones, "indicators": indicators}
    if skims_sha256 is not None:
        doc["skims_sha256"] = skims_sha256
    if select_links:
        doc["select_links"] = select_links
    if omitted:  # what was computed but is too large to store, and why (decision 0316)
        doc["omitted"] = omitted
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _num(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _watch_parent(lifeline: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()
    _terminate()


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    _terminate()


def _terminate() -> None:
    """Kill every process this one started (an external model runs in its own session)."""
    for pid in children_of(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os._exit(1)


def children_of(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
