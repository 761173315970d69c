"""Wiring of the simulation job pipeline: dispatcher, workers, recorder (from a Container)."""

from __future__ import annotations

import shlex
from functools import partial

from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from adapters.dispatcher import Dispatcher, JobLocator, Outbox, RetryPolicy
from adapters.job_queue import JobQueue, WorkerRegistry
from adapters.jobs import AckedProducer, group_lag
from adapters.kafka import group_consumer, make_producer
from adapters.leases import LeaseStore
from adapters.result_recorder import ResultCache, ResultRecorder
from domain.ports import ResolvedInput
from domain.simulation import SimulationRun
from infra.machine import memory_mb
from infra.settings import JobSettings
from infra.wiring import Container
from simulation_worker import model_input
from simulation_worker.metrics import WorkerMetrics
from simulation_worker.worker import Worker, WorkerConfig, worker_name


def group_name(container: Container, role: str) -> str:
    """`cartolog-workers`, `cartolog-recorder`, `cartolog-dispatcher` with the default topic
    prefix; another prefix (a test's, a second deployment's) gets groups of its own."""
    return f"{container.settings.topic_prefix}-{role}"


def _producer(container: Container) -> AckedProducer:
    return AckedProducer(partial(make_producer, container.bootstrap_servers, linger_ms=0))


def dispatcher(container: Container, settings: JobSettings | None = None,
               release_every_s: float = 0.5) -> Dispatcher:
    """The dispatcher loop: SimulationRun events → job and dead-letter messages; jobs are
    released when a NOTIFY wakes it, and every `release_every_s` (decision 0313)."""
    js = settings or container.settings.jobs
    s = container.settings

    def resolve(run: SimulationRun) -> ResolvedInput:
        return model_input.store(container.app, container.blobs, run,
                                 js.model_version(run.model))

    consumers = partial(group_consumer, container.bootstrap_servers,
                        group_name(container, "dispatcher"),
                        [s.events_topic], fetch_max_wait_ms=js.fetch_wait_ms)
    queue = JobQueue(container.engine, s.jobs_topic, js.worker_liveness_s)
    return Dispatcher(container.app, Outbox(container.engine), queue, _producer(container),
                      consumers,
                      JobLocator(container.bootstrap_servers), resolve, s.jobs_topic,
                      s.dlq_topic, RetryPolicy(js.retry_base_s, js.retry_max_s),
                      release_every_s)


def recorder(container: Container, settings: JobSettings | None = None) -> ResultRecorder:
    """The recorder loop: result messages → SimulationRun events."""
    js = settings or container.settings.jobs
    consumers = partial(group_consumer, container.bootstrap_servers,
                        group_name(container, "recorder"),
                        [container.settings.results_topic], fetch_max_wait_ms=js.fetch_wait_ms)
    return ResultRecorder(container.app, ResultCache(container.engine), consumers)


def worker(container: Container, settings: JobSettings | None = None,
           name: str | None = None) -> Worker:
    """One worker loop of the group `cartolog-workers`."""
    js = settings or container.settings.jobs
    s = container.settings
    config = WorkerConfig(
        name=name or worker_name(), job_timeout_s=js.job_timeout_s, lease_ttl_s=js.lease_ttl_s,
        grace_s=js.worker_grace_s, progress_every_s=js.progress_every_s,
        heartbeat_every_s=js.worker_liveness_s / 4,
        external_command=tuple(shlex.split(js.external_model_command)),
        model_threads=js.model_threads,
        model_memory_mb=js.model_memory_mb or memory_mb(),
    )
    workers = group_name(container, "workers")
    metrics = WorkerMetrics(lag=partial(group_lag, container.bootstrap_servers, workers,
                                        s.jobs_topic))
    # subscribe() happens in Worker.run, with its rebalance listener.
    consumers = partial(group_consumer, container.bootstrap_servers, workers, [],
                        max_poll_records=1, fetch_max_wait_ms=js.fetch_wait_ms,
                        partition_assignment_strategy=(RoundRobinPartitionAssignor,))
    return Worker(container.app, container.blobs, LeaseStore(container.engine),
                  ResultCache(container.engine), _producer(container), consumers, s.jobs_topic,
                  s.results_topic, config, metrics,
                  WorkerRegistry(container.engine, s.jobs_topic, config.name,
                                 js.worker_liveness_s))
