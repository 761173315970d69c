"""`cartolog worker`: one simulation job at a time, from the group `cartolog-workers`.

For each job message the worker:
1. skips it if its run is finished or has moved past that attempt (commit, nothing else);
2. claims the attempt's lease in PostgreSQL; a live lease held by another worker is waited
   out (polling, partitions paused), a finished one has its stored result re-sent;
3. records `SimulationRun.Started`, then runs the model in a child process; meanwhile all its
   partitions stay paused and it keeps polling, so it stays in the group; it renews the lease,
   records progress (throttled), and kills the child on timeout or cancellation;
4. stores the output blob, keeps the result message in the lease row, sends it to the results
   topic, waits for the broker's acknowledgement, and only then commits the job's offset.

The worker reports in `simulation_workers` which partitions it holds and whether it is
computing (every `heartbeat_every_s`, and at once when that changes); the dispatcher only
sends a job to an idle worker's partition (decision 0310). After committing a job it marks
the job consumed, which frees the worker for the next one.

On stop() (SIGTERM) it takes no new job and lets the current one finish within a grace
period; past that it kills the child, gives the lease up, and exits without committing, so the
job goes to another member of the group.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from adapters.blobs import BlobTooLarge
from adapters.job_queue import WorkerRegistry
from adapters.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    AckedProducer,
    JobMessage,
    ResultMessage,
    SendFailed,
    commit_one,
    decode_job,
    encode,
    result_message,
)
from adapters.leases import Claim, LeaseStore
from adapters.result_recorder import ResultCache
from domain.application import Cartolog
from domain.errors import InvalidTransition, NotFound, QuotaExceeded, VersionConflict
from domain.ports import BlobNotFound, BlobStore
from domain.simulation import CANCELLED as RUN_CANCELLED
from domain.simulation import QUEUED, RETRYING, RUNNING, SimulationRun
from domain.values import Actor
from simulation_worker.child import ModelSpec, Outcome
from simulation_worker.metrics import WorkerMetrics
from simulation_worker.process import ModelHost, ModelProcess

log = logging.getLogger(__name__)


def worker_name() -> str:
    """host:pid:random, unique per worker object."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerConfig:
    """Timeouts and intervals of one worker."""

    name: str = field(default_factory=worker_name)
    job_timeout_s: float = 3600.0
    lease_ttl_s: float = 15.0
    grace_s: float = 30.0
    progress_every_s: float = 5.0
    cancel_check_every_s: float = 1.0
    heartbeat_every_s: float = 0.75
    external_command: tuple[str, ...] = ()
    warm_model: bool = True  # warm the model process up before taking the first job
    model_threads: int = 0  # threads of the built-in model (0: numba's default, every core)
    # The most resident memory a model process (and an external model it runs) may use while
    # a job runs; past it the model is killed and the attempt fails (decision 0315). 0: none.
    model_memory_mb: int = 0


class _Released(Exception):
    """Stopping past the grace period: the job goes back to the group uncommitted."""


class _LeaseLost(Exception):
    """Another worker took the job over (our lease expired): drop it uncommitted."""


class _StartConflict(Exception):
    """The run kept changing while the attempt was being started: the lease is given up and
    the job read again, uncommitted (never committed as cancelled: the run would stay queued)."""


START_TRIES = 12  # with the backoff below: about 7 s of conflicts before the job is re-read


class _Pauser(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps partitions that arrive in a rebalance paused while a job is in hand."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Offsets are committed per job; the registry learns the partitions are gone."""
        self.worker.beat(force=True, held=set())

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Pause new partitions while busy; tell the registry."""
        consumer = self.worker.consumer
        if self.worker.busy and consumer is not None and assigned:
            consumer.pause(*assigned)
        self.worker.beat(force=True, held={tp.partition for tp in assigned})


class Worker:
    """The job loop; run() until stop()."""

    def __init__(self, app: Cartolog, blobs: BlobStore, leases: LeaseStore, cache: ResultCache,
                 producer: AckedProducer, consumer_factory: Callable[[], KafkaConsumer],
                 jobs_topic: str, results_topic: str, config: WorkerConfig,
                 metrics: WorkerMetrics | None = None,
                 registry: WorkerRegistry | None = None) -> None:
        self.app, self.blobs, self.leases, self.cache = app, blobs, leases, cache
        self.producer = producer
        self.consumer_factory = consumer_factory
        self.jobs_topic, self.results_topic = jobs_topic, results_topic
        self.config = config
        self.metrics = metrics or WorkerMetrics()
        self.registry = registry
        self.last_beat = 0.0
        self.held: set[int] = set()
        self.heartbeats_done = threading.Event()
        self.actor = Actor(sub=f"worker:{config.name}")
        self.stopping = threading.Event()
        self.stop_requested_at: float | None = None
        self.consumer: KafkaConsumer | None = None
        self.busy = False
        self.current_child: ModelProcess | None = None
        self.host = ModelHost(warm=config.warm_model, threads=config.model_threads)
        self.stages: dict[str, float] = {}  # epoch seconds of the current job's steps

    # -- loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Warm the model process up, then take jobs one at a time until stop()."""
        self._warm_up()
        self.consumer = self.consumer_factory()
        self.consumer.subscribe([self.jobs_topic], listener=_Pauser(self))
        if self.registry is not None:
            threading.Thread(target=self._heartbeats, name=f"{self.config.name} heartbeat",
                             daemon=True).start()
        try:
            while not self.stopping.is_set():
                try:
                    self._poll_one()
                except _Released:
                    break
                except KafkaError as error:
                    log.warning("%s: broker error, carrying on: %r", self.config.name, error)
                    self.stopping.wait(1.0)
        finally:
            self.heartbeats_done.set()
            self.consumer.close()
            self.producer.close()
            self.host.close()
            self._leave()

    def _warm_up(self) -> None:
        """Start the model process and wait until it has loaded the model, before joining
        the group: no job waits for that (decision 0312). A process that fails to warm up
        is replaced by the first job."""
        started = time.monotonic()
        self.host.start()
        while not self.stopping.is_set() and not self.host.wait_ready(1.0):
            if not self.host.alive():
                log.warning("%s: the model process died while warming up", self.config.name)
                return
        log.info("%s: model process ready in %.1f s", self.config.name,
                 time.monotonic() - started)

    def stop(self) -> None:
        """Take no new job; finish the current one within the grace period."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        self.stopping.set()

    def _poll_one(self) -> None:
        assert self.consumer is not None
        self.beat()
        for tp, records in self.consumer.poll(timeout_ms=500, max_records=1).items():
            record = records[0]
            self.stages = {"received": time.time()}
            self.busy = True
            self.consumer.pause(*self.consumer.assignment())
            self.beat(force=True)
            try:
                if self._process(record.value, tp, record.offset) and \
                        commit_one(self.consumer, tp, record.offset + 1):
                    self._consumed(record.value)
            except _LeaseLost:
                log.warning("%s lost the lease of the job at %s:%d@%d", self.config.name,
                            tp.topic, tp.partition, record.offset)
            except _StartConflict:
                log.warning("%s: the run of the job at %s:%d@%d kept changing while it was "
                            "being started; reading the job again", self.config.name,
                            tp.topic, tp.partition, record.offset)
                self.consumer.seek(tp, record.offset)
            finally:
                self.busy = False
                if not self.stopping.is_set():
                    self.consumer.resume(*self.consumer.assignment())
                    self.beat(force=True)
            return

    # -- registry -----------------------------------------------------------------------------

    def beat(self, force: bool = False, held: set[int] | None = None) -> None:
        """Note the partitions held (at most every interval unless given); with `force`,
        report them and the busy state now. A thread reports them every interval too."""
        now = time.monotonic()
        if self.registry is None or self.consumer is None:
            return
        if held is not None:
            self.held = held
        elif force or now - self.last_beat >= self.config.heartbeat_every_s:
            self.last_beat = now
            self.held = {tp.partition for tp in self.consumer.assignment()
                         if tp.topic == self.jobs_topic}
        if force:
            self._report()

    def _report(self) -> None:
        assert self.registry is not None
        try:
            self.registry.beat(self.held, self.busy)
        except SQLAlchemyError as error:
            log.warning("%s: heartbeat not recorded: %s", self.config.name, error)

    def _heartbeats(self) -> None:
        """The process is alive: reported even while the loop waits on a slow child start."""
        while not self.heartbeats_done.wait(self.config.heartbeat_every_s):
            self._report()

    def _consumed(self, value: bytes) -> None:
        if self.registry is None:
            return
        try:
            job = decode_job(value)
        except (ValueError, TypeError):
            return
        self.registry.consumed(uuid.UUID(job.run_id), job.attempt)

    def _leave(self) -> None:
        if self.registry is not None:
            try:
                self.registry.leave()
            except SQLAlchemyError as error:
                log.warning("%s: could not leave the registry: %s", self.config.name, error)

    def _keep_polling(self, seconds: float) -> None:
        """Stay in the group: poll with every partition paused."""
        assert self.consumer is not None
        deadline = time.monotonic() + seconds
        while True:
            self.beat()
            stray = self.consumer.poll(timeout_ms=max(0, int((deadline - time.monotonic())
                                                              * 1000)))
            for tp, records in stray.items():  # a partition that arrived unpaused
                self.consumer.seek(tp, records[0].offset)
                self.consumer.pause(tp)
            if time.monotonic() >= deadline:
                return

    # -- one job ------------------------------------------------------------------------------

    def _process(self, value: bytes, tp: TopicPartition, offset: int) -> bool:
        """Handle one job message; True when its offset may be committed."""
        try:
            job = decode_job(value)
        except (ValueError, TypeError) as error:
            log.error("bad job message at %s:%d@%d: %s", tp.topic, tp.partition, offset, error)
            return True
        if not self._wanted(job):
            return True
        claim = self._claim(job)
        if claim is None:
            return True
        if claim.status == "done" and claim.result is not None:
            self._send(result_message(claim.result))
            return True
        return self._execute(job)

    def _wanted(self, job: JobMessage) -> bool:
        run = self._run(job)
        if run is None or run.is_terminal or run.attempt > job.attempt:
            return False
        if run.status in (QUEUED, RETRYING):
            return job.attempt == run.attempt + 1
        return run.status == RUNNING and job.attempt == run.attempt

    def _run(self, job: JobMessage) -> SimulationRun | None:
        try:
            run = self.app.find_run(uuid.UUID(job.run_id))
        except NotFound:
            return None
        return run if run.tenant_id == job.tenant_id else None

    def _claim(self, job: JobMessage) -> Claim | None:
        """The lease; None to skip a job another live worker computes. A lease still held by a
        worker that is gone is waited out (without blocking the poll loop)."""
        run_id = uuid.UUID(job.run_id)
        while True:
            claim = self.leases.claim(run_id, job.attempt, job.tenant_id, self.config.name,
                                      self.config.lease_ttl_s)
            if claim.status != "held":
                return claim
            if self.registry is not None and claim.worker is not None and \
                    self.registry.alive(claim.worker):
                return None  # a live worker computes it (we got a copy in a rebalance)
            if self.stopping.is_set():
                raise _Released()
            self._keep_polling(1.0)
            if not self._wanted(job):
                return None

    def _execute(self, job: JobMessage) -> bool:
        started = time.monotonic()
        started_ok = self._record_start(job)
        self._stage("started")
        if not started_ok:
            self.leases.finish(uuid.UUID(job.run_id), job.attempt, self.config.name,
                               asdict(self._result(job, CANCELLED, started)))
            return True
        self.metrics.started()
        try:
            result = self._outcome(job, started)
        except (_Released, _LeaseLost, SQLAlchemyError, KafkaError):
            raise  # the job goes back, or another worker has it: nothing wrong with the job
        except Exception as error:
            # Whatever else the job makes the worker raise would raise again on every retry,
            # and kill each worker that takes the job: it is the attempt's error instead.
            log.exception("%s: job of run %s failed in the worker", self.config.name,
                          job.run_id)
            result = self._result(job, FAILED, started, traceback=traceback.format_exc(),
                                  error=f"the worker could not complete the job: "
                                        f"{type(error).__name__}: {error}")
        finally:
            self.metrics.finished(time.monotonic() - started)
        self._stage("result")
        if not self.leases.finish(uuid.UUID(job.run_id), job.attempt, self.config.name,
                                  {**asdict(result), "stages": self.stages}):
            raise _LeaseLost()
        if result.outcome != CANCELLED:
            self._send(result)
        return True

    def _record_start(self, job: JobMessage) -> bool:
        """Record the attempt's start: False when the run may not start (cancelled, or
        another attempt is ahead). Conflicting writes are retried with backoff; when they
        persist the job is given back (_StartConflict), not dropped."""
        delay = 0.02
        for _ in range(START_TRIES):
            try:
                self.app.start_attempt(job.tenant_id, uuid.UUID(job.run_id), job.attempt,
                                       self.config.name, self.actor)
                return True
            except VersionConflict:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except InvalidTransition as error:
                log.info("not starting %s attempt %d: %s", job.run_id, job.attempt, error)
                return False
        self.leases.release(uuid.UUID(job.run_id), job.attempt, self.config.name)
        raise _StartConflict()

    def _outcome(self, job: JobMessage, started: float) -> ResultMessage:
        if job.input_error:
            return self._result(job, FAILED, started, error=job.input_error)
        if job.reuse_allowed:
            earlier = self.cache.lookup(job.tenant_id, job.reuse_key)
            if earlier is not None:
                return self._result(job, COMPLETED, started,
                                    result_sha256=earlier["result_sha256"],
                                    indicators=earlier["indicators"],
                                    reused_from=earlier["run_id"])
        try:
            document = self.blobs.get(job.tenant_id, job.input_sha256)
        except BlobNotFound:
            return self._result(job, FAILED, started,
                                error=f"model input {job.input_sha256} not in the blob store")
        return self._compute(job, document, started)

    def _compute(self, job: JobMessage, document: bytes, started: float) -> ResultMessage:
        child = self.host.run(document, self._spec(job))
        self._stage("child_started")
        self.current_child = child
        try:
            stopped = self._supervise(job, child, started)
        except (_Released, _LeaseLost):
            child.kill()
            self.leases.release(uuid.UUID(job.run_id), job.attempt, self.config.name)
            if not self.stopping.is_set():
                self.host.start()
            raise
        finally:
            self.current_child = None
        self._stage("model_done")
        if stopped is not None:
            child.kill()
            self.host.start()  # the next job's process warms up meanwhile
            return stopped
        child.close()
        result = self._from_outcome(job, child, started)
        if not self.host.alive():
            self.host.start()  # it crashed: replace it now rather than at the next job
        return result

    def _spec(self, job: JobMessage) -> ModelSpec:
        if job.model == "external":
            # The worker's own timeout kills the model first; this one is a backstop.
            return ModelSpec("external", self.config.external_command,
                             self.config.job_timeout_s + 30)
        return ModelSpec("builtin", max_blob_bytes=int(getattr(self.blobs, "max_bytes", 0)))

    def _supervise(self, job: JobMessage, child: ModelProcess,
                   started: float) -> ResultMessage | None:
        """Wait for the child; a result message if it must be stopped, None once it is done."""
        run_id = uuid.UUID(job.run_id)
        last_renew = last_check = last_progress = time.monotonic()
        while not child.finished():
            for kind, body in child.messages(0.2):
                if kind == "progress" and time.monotonic() - last_progress >= \
                        self.config.progress_every_s:
                    last_progress = time.monotonic()
                    self._record_progress(job, *body)
            self._keep_polling(0.0)
            now = time.monotonic()
            if now - started > self.config.job_timeout_s:
                return self._result(job, FAILED, started, error=(
                    f"job timed out after {self.config.job_timeout_s:g} s; model killed"))
            limit = self.config.model_memory_mb
            if limit and child.resident_mb() > limit:
                return self._result(job, FAILED, started, error=(
                    f"the model needed more than {limit} MB of memory "
                    "(CARTOLOG_MODEL_MEMORY_MB); model killed"))
            if self._past_grace():
                raise _Released()
            if now - last_renew >= self.config.lease_ttl_s / 3:
                last_renew = now
                if not self.leases.renew(run_id, job.attempt, self.config.name,
                                         self.config.lease_ttl_s):
                    raise _LeaseLost()
            if now - last_check >= self.config.cancel_check_every_s:
                last_check = now
                if self._cancelled(job):
                    return self._result(job, CANCELLED, started, error="cancelled")
        return None

    def _past_grace(self) -> bool:
        at = self.stop_requested_at
        return at is not None and time.monotonic() - at > self.config.grace_s

    def _cancelled(self, job: JobMessage) -> bool:
        run = self._run(job)
        return run is None or run.status == RUN_CANCELLED

    def _record_progress(self, job: JobMessage, iteration: int, gap: float,
                         elapsed: float) -> None:
        try:
            self.app.report_progress(job.tenant_id, uuid.UUID(job.run_id), job.attempt,
                                     iteration, gap, elapsed, self.actor)
        except (VersionConflict, InvalidTransition) as error:
            log.debug("progress of %s not recorded: %s", job.run_id, error)

    def _from_outcome(self, job: JobMessage, child: ModelProcess,
                      started: float) -> ResultMessage:
        outcome: Outcome | None = child.outcome
        if outcome is None:
            return self._result(job, FAILED, started, error=child.exit_reason())
        if outcome.started_at:
            self.stages.update(child_entered=outcome.started_at,
                               computed=outcome.started_at + outcome.compute_s)
        if not outcome.ok:
            return self._result(job, FAILED, started, compute_s=outcome.compute_s,
                                error=outcome.error, traceback=outcome.traceback)
        try:
            for attachment in outcome.attachments:
                self.blobs.put(job.tenant_id, attachment)
            sha256 = self.blobs.put(job.tenant_id, outcome.output)
        except BlobTooLarge as error:  # the same again on every retry: fail the attempt
            return self._result(job, FAILED, started, compute_s=outcome.compute_s,
                                error=f"the model's result cannot be stored: {error} "
                                      "(CARTOLOG_BLOB_MAX_BYTES)")
        except QuotaExceeded as error:
            return self._result(job, FAILED, started, compute_s=outcome.compute_s,
                                error=f"the model's result cannot be stored: {error}")
        return self._result(job, COMPLETED, started, compute_s=outcome.compute_s,
                            result_sha256=sha256, indicators=outcome.indicators or {})

    def _result(self, job: JobMessage, outcome: str, started: float, **fields: object
                ) -> ResultMessage:
        return ResultMessage(
            run_id=job.run_id, attempt=job.attempt, tenant_id=job.tenant_id, outcome=outcome,
            worker=self.config.name, duration_s=time.monotonic() - started,
            reuse_key=job.reuse_key, job_id=job.job_id, **fields,  # type: ignore[arg-type]
        )

    def _stage(self, name: str) -> None:
        self.stages[name] = time.time()

    def _send(self, result: ResultMessage) -> None:
        """Send until the broker acknowledges (a new producer after each failure)."""
        while True:
            try:
                self.producer.send(self.results_topic, result.run_id, encode(result))
                return
            except SendFailed as error:
                log.warning("%s: result of %s not acknowledged, retrying: %s",
                            self.config.name, result.run_id, error)
                if self._past_grace():
                    raise _Released() from error
                self._keep_polling(1.0)
