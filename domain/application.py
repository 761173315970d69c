"""The command API of Cartolog. HTTP, CLI and workers all call these methods."""

from __future__ import annotations

import copy
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Mapper, Recording, StoredEvent
from eventsourcing.utils import Environment, get_topic

from domain import rules
from domain.base import TenantAggregate
from domain.dataset import Dataset
from domain.demand import (
    DemandMatrixUpload,
    VehicleClassSpec,
    class_match_problems,
    select_link_problems,
    upload_problems,
)
from domain.edits import Edit, NetworkIndex
from domain.errors import (
    AlreadyExists,
    InvalidCommand,
    InvalidTransition,
    NotFound,
    UnknownTenant,
    VersionConflict,
)
from domain.merge_request import (
    SETTING_TYPES,
    EditRecord,
    MergeRequest,
    as_edit,
    conflicts,
    edit_records,
)
from domain.ports import BlobNotFound, BlobStore
from domain.scenario import MAX_EDITS, Scenario
from domain.simulation import SimulationRun
from domain.tenant import Tenant
from domain.values import CARTOLOG_NAMESPACE, Actor, Network, tenant_uuid

A = TypeVar("A", bound=TenantAggregate)


class BoundedMapper(Mapper[UUID]):
    """The library's mapper, refusing an event too large for the relay to publish."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """The stored event; InvalidCommand (nothing is saved) when over MAX_EVENT_BYTES."""
        stored = super().to_stored_event(domain_event)
        if len(stored.state) > rules.MAX_EVENT_BYTES:
            kind = type(domain_event).__qualname__
            raise InvalidCommand(
                f"the change is too large to record: its {kind} event would be "
                f"{len(stored.state)} bytes, at most {rules.MAX_EVENT_BYTES} are allowed; "
                "nothing was recorded")
        return stored


class Cartolog(Application[UUID]):
    """Event-sourced application: every change is an event in one store."""

    name = "Cartolog"
    env = {"AGGREGATE_CACHE_MAXSIZE": "5000"}  # noqa: RUF012 (the library's own class attribute)

    def __init__(self, env: Mapping[str, str] | None = None, *, blobs: BlobStore) -> None:
        super().__init__(env)
        self.blobs = blobs
        self._known_tenants: set[str] = set()
        self._network_indexes: OrderedDict[str, NetworkIndex] = OrderedDict()

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """Only the class's and the caller's configuration. The library would also read the
        process environment (AGGREGATE_CACHE_MAXSIZE, PERSISTENCE_MODULE, and CARTOLOG_-
        prefixed copies of each, which win), changing the store behind Settings' back."""
        return Environment(name, {**type(self).env, **(env or {})})

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper with a size limit on every event a command appends."""
        return self.factory.mapper(transcoder=self.construct_transcoder(),
                                   mapper_class=BoundedMapper)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Store the pending events of our aggregates (fast path of Application.save)."""
        if kwargs or not all(isinstance(obj, TenantAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        # Same steps as the library's save(), minus its runtime-checked Protocol
        # isinstance tests, which cost more than the rest of the Python work of a save.
        processing = ProcessingEvent[UUID]()
        for aggregate in objs:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    # -- tenants ----------------------------------------------------------------------------

    def register_tenant(self, tenant_id: str, by: Actor, display_name: str = "") -> UUID:
        """Register a tenant; its name becomes its subdomain."""
        tenant = Tenant.register(tenant_id, display_name, by)
        self._save_new(tenant, f"tenant {tenant_id!r} already exists")
        self._known_tenants.add(tenant_id)
        return tenant.id

    def list_tenants(self) -> list[Tenant]:
        """Every registered tenant, in registration order."""
        topic = get_topic(Tenant.Registered)
        notifications = self.recorder.select_notifications(
            start=None, limit=1_000_000, topics=[topic])
        tenants: list[object] = [self.repository.get(UUID(str(n.originator_id)))
                                 for n in notifications]
        return [t for t in tenants if isinstance(t, Tenant)]

    def set_tenant_storage_quota(self, tenant_id: str, megabytes: float | None,
                                 by: Actor) -> bool:
        """Set a tenant's storage quota in MiB (0: no limit; None: the server's default);
        False when it already was that (decision 0719)."""
        tenant = self._tenant(tenant_id)
        changed = tenant.set_storage_quota(megabytes, by)
        if changed:
            self.save(tenant)
        return changed

    def tenant_storage_quota_mb(self, tenant_id: str) -> float | None:
        """The operator's storage quota for the tenant in MiB (0: no limit), or None when it
        takes the server's default (an unregistered tenant stores nothing anyway: every
        command checks it first)."""
        try:
            return self._tenant(tenant_id).storage_quota_mb
        except UnknownTenant:
            return None

    def _tenant(self, tenant_id: str) -> Tenant:
        try:
            tenant: object = self.repository.get(tenant_uuid(tenant_id))
        except AggregateNotFoundError:
            raise UnknownTenant(tenant_id) from None
        if not isinstance(tenant, Tenant):
            raise UnknownTenant(tenant_id)
        return tenant

    def require_tenant(self, tenant_id: str) -> None:
        """Raise UnknownTenant unless `tenant_id` was registered."""
        if tenant_id in self._known_tenants:
            return
        try:
            self.repository.get(tenant_uuid(tenant_id))
        except AggregateNotFoundError:
            raise UnknownTenant(tenant_id) from None
        self._known_tenants.add(tenant_id)

    # -- datasets ---------------------------------------------------------------------------

    def import_dataset(
        self, tenant_id: str, name: str, network: Network, by: Actor,
        source_format: str = "geojson",
    ) -> UUID:
        """Validate a network, store it by claim check, and record the import."""
        self.require_tenant(tenant_id)
        problems = network.problems()
        if problems:
            raise InvalidCommand("the network was rejected", problems)
        sha256 = self.blobs.put(tenant_id, network.canonical_json())
        counts = (len(network.nodes), len(network.links), len(network.zones))
        dataset = Dataset.record_import(uuid.uuid4(), tenant_id, name, sha256, counts,
                                        source_format, by)
        self.save(dataset)
        return dataset.id

    def get_dataset(self, tenant_id: str, dataset_id: UUID) -> Dataset:
        """The dataset, if it belongs to this tenant."""
        return self._get(Dataset, tenant_id, dataset_id)

    def load_network(self, tenant_id: str, sha256: str) -> Network:
        """The full network behind a dataset's claim check."""
        try:
            return Network.from_json(self.blobs.get(tenant_id, sha256))
        except BlobNotFound:
            raise NotFound("network", sha256) from None

    # -- scenarios --------------------------------------------------------------------------

    def create_scenario(
        self, tenant_id: str, dataset_id: UUID, name: str, by: Actor,
    ) -> UUID:
        """A new scenario on a dataset."""
        dataset = self.get_dataset(tenant_id, dataset_id)
        scenario = Scenario.create(uuid.uuid4(), tenant_id, name, dataset.id,
                                   dataset.network_sha256, by)
        self.save(scenario)
        return scenario.id

    def fork_scenario(
        self, tenant_id: str, source_id: UUID, name: str, by: Actor,
        at_version: int | None = None,
    ) -> UUID:
        """A new scenario starting from another one's state at `at_version`."""
        if at_version is not None:
            _check(rules.integer_problem("fork_version", at_version))
        source = self.get_scenario(tenant_id, source_id, at_version)
        fork = source.fork(uuid.uuid4(), name, by)
        self.save(fork)
        return fork.id

    def edit_scenario(
        self, tenant_id: str, scenario_id: UUID, expected_version: int, edits: Sequence[Edit],
        by: Actor,
    ) -> int:
        """Apply edits atomically if the scenario is still at `expected_version`."""
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        network = self.network_index(tenant_id, scenario.network_sha256)
        scenario.apply_edits(list(edits), network, by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def set_demand_matrix(
        self, tenant_id: str, scenario_id: UUID, expected_version: int,
        upload: DemandMatrixUpload, by: Actor,
    ) -> int:
        """Check the matrix against the scenario's zones, store it, and make it the demand.

        Raises InvalidCommand listing every mismatch; then nothing is stored.
        """
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        network = self.network_index(tenant_id, scenario.network_sha256)
        problems = upload_problems(upload, network)
        if problems:
            raise InvalidCommand("the demand matrix was rejected; nothing was stored", problems)
        if scenario.archived:
            raise InvalidTransition(f"scenario {scenario_id} is archived")
        sha256 = self.blobs.put(tenant_id, upload.content)
        scenario.set_demand_matrix(upload, sha256, by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def zone_count(self, tenant_id: str, scenario_id: UUID) -> int:
        """How many zones the scenario's network has: the most its demand matrix may name."""
        scenario = self.get_scenario(tenant_id, scenario_id)
        return len(self.network_index(tenant_id, scenario.network_sha256).zone_ids)

    def declare_vehicle_classes(
        self, tenant_id: str, scenario_id: UUID, expected_version: int,
        classes: Sequence[VehicleClassSpec], by: Actor,
    ) -> int:
        """Declare the scenario's vehicle classes (a new scenario version)."""
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        scenario.declare_vehicle_classes(list(classes), by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def remove_demand_matrix(
        self, tenant_id: str, scenario_id: UUID, expected_version: int, by: Actor,
    ) -> int:
        """Make the gravity model the scenario's demand again."""
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        scenario.remove_demand_matrix(by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def demand_matrix_content(self, tenant_id: str, scenario_id: UUID,
                              version: int | None = None) -> bytes:
        """The canonical bytes of the scenario's demand matrix (NotFound when it has none)."""
        scenario = self.get_scenario(tenant_id, scenario_id, version)
        if scenario.demand_matrix is None:
            raise NotFound("demand matrix of scenario", scenario_id)
        try:
            return self.blobs.get(tenant_id, scenario.demand_matrix["sha256"])
        except BlobNotFound:
            raise NotFound("demand matrix", scenario.demand_matrix["sha256"]) from None

    def archive_scenario(
        self, tenant_id: str, scenario_id: UUID, expected_version: int, reason: str, by: Actor,
    ) -> int:
        """Archive a scenario."""
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        scenario.archive(reason, by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def restore_scenario(
        self, tenant_id: str, scenario_id: UUID, expected_version: int, reason: str, by: Actor,
    ) -> int:
        """Bring an archived scenario back."""
        scenario = self._get_at(Scenario, tenant_id, scenario_id, expected_version)
        scenario.restore(reason, by)
        self._save_existing(scenario, expected_version)
        return scenario.version

    def scenario_edits(
        self, tenant_id: str, scenario_id: UUID, after: int, upto: int | None = None,
    ) -> list[EditRecord]:
        """The scenario's edits with after < version <= upto, oldest first."""
        scenario = self.get_scenario(tenant_id, scenario_id)
        last = scenario.version if upto is None else upto
        if not 0 <= after <= last <= scenario.version:
            raise InvalidCommand(f"scenario {scenario_id} has versions 1 to {scenario.version}; "
                                 f"asked for {after} to {last}")
        events = self.repository.event_store.get(scenario_id, gt=after, lte=last)
        return edit_records(events)

    def edits_leading_to(self, tenant_id: str, scenario_id: UUID, version: int
                         ) -> list[EditRecord]:
        """Every edit behind the scenario at `version`: its ancestors' up to each fork
        point, then its own, oldest first; each record names its `scenario_id`."""
        scenario = self.get_scenario(tenant_id, scenario_id, version)
        inherited: list[EditRecord] = []
        if scenario.fork_of is not None and scenario.fork_version is not None:
            inherited = self.edits_leading_to(tenant_id, scenario.fork_of,
                                              scenario.fork_version)
        own = self.scenario_edits(tenant_id, scenario_id, after=1, upto=version)
        return inherited + [{**record, "scenario_id": scenario_id} for record in own]

    def get_scenario(
        self, tenant_id: str, scenario_id: UUID, version: int | None = None,
    ) -> Scenario:
        """The scenario now, or as it was at `version`."""
        return self._get(Scenario, tenant_id, scenario_id, version)

    def network_index(self, tenant_id: str, sha256: str) -> NetworkIndex:
        """Node, link and zone ids of a stored network (cached by content hash)."""
        key = f"{tenant_id}/{sha256}"
        if key not in self._network_indexes:
            network = self.load_network(tenant_id, sha256)
            self._network_indexes[key] = NetworkIndex(
                node_ids=frozenset(n.id for n in network.nodes),
                link_ids=frozenset(k.id for k in network.links),
                zone_ids=frozenset(z.id for z in network.zones),
                node_positions={n.id: (n.x, n.y) for n in network.nodes},
            )
            if len(self._network_indexes) > 64:
                self._network_indexes.popitem(last=False)
        self._network_indexes.move_to_end(key)
        return self._network_indexes[key]

    # -- simulations ------------------------------------------------------------------------

    def request_simulation(
        self, tenant_id: str, scenario_id: UUID, model: str, parameters: dict[str, Any],
        by: Actor, scenario_version: int | None = None, idempotency_key: str | None = None,
        max_attempts: int = 3,
    ) -> UUID:
        """Request a run; the same idempotency key with the same request gives the same run."""
        if scenario_version is not None:
            _check(rules.integer_problem("scenario_version", scenario_version))
        scenario = self.get_scenario(tenant_id, scenario_id)
        version = scenario.version if scenario_version is None else scenario_version
        if not 1 <= version <= scenario.version:
            raise InvalidCommand(f"scenario {scenario_id} has no version {version}")
        if scenario.archived:
            raise InvalidCommand(f"scenario {scenario_id} is archived")
        at = scenario if version == scenario.version else self.get_scenario(
            tenant_id, scenario.id, version)
        self._check_classes(at)
        self._check_select_links(tenant_id, at, parameters)
        run_id = uuid.uuid4() if idempotency_key is None else uuid.uuid5(
            CARTOLOG_NAMESPACE, f"run:{tenant_id}:{idempotency_key}")
        run = SimulationRun.request(run_id, tenant_id, scenario.id, version, model, parameters,
                                    by, max_attempts, idempotency_key)
        try:
            self._save_new(run, "duplicate run")
        except AlreadyExists:
            self._check_same_request(run)
        return run_id

    @staticmethod
    def _check_classes(at: Scenario) -> None:
        """The run's demand matrix must hold exactly the declared classes (when both exist)."""
        if at.demand_matrix is None or not at.vehicle_classes:
            return
        problems = class_match_problems(list(at.demand_matrix["classes"]),
                                        [str(c["name"]) for c in at.vehicle_classes])
        if problems:
            raise InvalidCommand("the demand matrix does not match the vehicle classes",
                                 problems)

    def _check_select_links(self, tenant_id: str, at: Scenario,
                            parameters: dict[str, Any]) -> None:
        if parameters.get("select_links") is None:
            return
        network = self.network_index(tenant_id, at.network_sha256)
        problems = select_link_problems(parameters["select_links"],
                                        lambda link_id: at.link_exists(link_id, network))
        if problems:
            raise InvalidCommand("the select-link analysis was rejected", problems)

    def get_run(self, tenant_id: str, run_id: UUID, version: int | None = None) -> SimulationRun:
        """A simulation run of this tenant."""
        return self._get(SimulationRun, tenant_id, run_id, version)

    def start_attempt(self, tenant_id: str, run_id: UUID, attempt: int, worker: str,
                      by: Actor) -> None:
        """Record that a worker started an attempt."""
        self._change(tenant_id, run_id, lambda run: run.start(attempt, worker, by))

    def fail_attempt(self, tenant_id: str, run_id: UUID, attempt: int, error: str,
                     traceback: str, by: Actor) -> None:
        """Record a failed attempt (dead-letters the run when none is left)."""
        self._change(tenant_id, run_id,
                     lambda run: run.fail_attempt(attempt, error, traceback, by))

    def complete_run(self, tenant_id: str, run_id: UUID, attempt: int, result_sha256: str,
                     indicators: dict[str, float], duration_s: float, by: Actor,
                     reused_from: str | None = None) -> None:
        """Record a run's result (or its reuse of an earlier run's result)."""
        self._change(tenant_id, run_id, lambda run: run.complete(
            attempt, result_sha256, indicators, duration_s, by, reused_from))

    def report_progress(self, tenant_id: str, run_id: UUID, attempt: int, iteration: int,
                        relative_gap: float, elapsed_s: float, by: Actor) -> None:
        """Record how far the running attempt's model got."""
        self._change(tenant_id, run_id, lambda run: run.report_progress(
            attempt, iteration, relative_gap, elapsed_s, by))

    def find_run(self, run_id: UUID) -> SimulationRun:
        """A run of any tenant (operator and worker use only)."""
        try:
            run: object = self.repository.get(run_id)
        except AggregateNotFoundError:
            raise NotFound("SimulationRun", run_id) from None
        if not isinstance(run, SimulationRun):
            raise NotFound("SimulationRun", run_id)
        return run

    def dead_lettered_runs(self) -> list[SimulationRun]:
        """Every run, of any tenant, that is dead-lettered now (operator use)."""
        topic = get_topic(SimulationRun.DeadLettered)
        notifications = self.recorder.select_notifications(
            start=None, limit=1_000_000, topics=[topic])
        run_ids = dict.fromkeys(UUID(str(n.originator_id)) for n in notifications)
        runs = [self.find_run(run_id) for run_id in run_ids]
        return [run for run in runs if run.status == "dead_lettered"]

    def cancel_run(self, tenant_id: str, run_id: UUID, reason: str, by: Actor) -> None:
        """Cancel a run that has not finished."""
        self._change(tenant_id, run_id, lambda run: run.cancel(reason, by))

    def redrive_run(self, tenant_id: str, run_id: UUID, by: Actor) -> None:
        """Give a dead-lettered run new attempts."""
        self._change(tenant_id, run_id, lambda run: run.redrive(by))

    # -- merge requests ---------------------------------------------------------------------

    def open_merge_request(self, tenant_id: str, fork_id: UUID, title: str, by: Actor) -> UUID:
        """Propose merging the fork's edits since its fork point into its parent."""
        fork = self.get_scenario(tenant_id, fork_id)
        if fork.fork_of is None or fork.fork_version is None:
            raise InvalidCommand(f"scenario {fork_id} is not a fork")
        parent = self.get_scenario(tenant_id, fork.fork_of)
        fork_after, parent_after = self._merge_base(tenant_id, fork, parent)
        edits = self.scenario_edits(tenant_id, fork_id, after=fork_after)
        parent_edits = self.scenario_edits(tenant_id, parent.id, after=parent_after)
        request = MergeRequest.open(
            uuid.uuid4(), tenant_id, fork_id, parent.id, parent_after, fork.version,
            parent.version, title, edits, conflicts(edits, parent_edits), by)
        self.save(request)
        return request.id

    def _merge_base(self, tenant_id: str, fork: Scenario, parent: Scenario) -> tuple[int, int]:
        """The fork's and the parent's versions a new request starts after: the fork's
        creation and its fork point, or, once the parent took this fork's edits, the fork
        version that request was opened at and the parent's version after the merge (as git
        moves a merge base). Found in the parent's own log, not the read model."""
        assert fork.fork_version is not None
        base = (1, fork.fork_version)
        for event in self.repository.event_store.get(parent.id, gt=fork.fork_version):
            if isinstance(event, Scenario.MergeApplied) and event.fork_id == fork.id:
                merged = self.get_merge_request(tenant_id, event.merge_request_id)
                base = (merged.fork_version, event.originator_version)
        return base

    def get_merge_request(self, tenant_id: str, request_id: UUID) -> MergeRequest:
        """A merge request of this tenant."""
        return self._get(MergeRequest, tenant_id, request_id)

    def merge_conflicts(self, tenant_id: str, request: MergeRequest) -> list[dict[str, Any]]:
        """The request's conflicts with its parent as the parent is now."""
        parent_edits = self.scenario_edits(tenant_id, request.parent_id, after=request.fork_point)
        return conflicts(request.edits, parent_edits)

    def review_merge_request(self, tenant_id: str, request_id: UUID, verdict: str,
                             comment: str, by: Actor) -> int:
        """Approve or request changes (never on one's own request)."""
        request = self.get_merge_request(tenant_id, request_id)
        expected = request.version
        request.review(verdict, comment, by)
        self._save_existing(request, expected)
        return request.version

    def resolve_merge_conflict(self, tenant_id: str, request_id: UUID, subject: str, take: str,
                               by: Actor) -> int:
        """Take the fork's or the parent's edits on a subject both changed."""
        request = self.get_merge_request(tenant_id, request_id)
        expected = request.version
        current = [c["subject"] for c in self.merge_conflicts(tenant_id, request)]
        request.resolve(subject, take, current, by)
        self._save_existing(request, expected)
        return request.version

    def merge(self, tenant_id: str, request_id: UUID, by: Actor) -> int:
        """Apply the approved request's chosen edits to the parent; its new version."""
        request = self.get_merge_request(tenant_id, request_id)
        parent = self.get_scenario(tenant_id, request.parent_id)
        expected = parent.version
        current = [c["subject"] for c in self.merge_conflicts(tenant_id, request)]
        chosen = request.chosen_edits(current)
        merger = Actor(by.sub, str(request.id))
        if chosen:
            network = self.network_index(tenant_id, parent.network_sha256)
            _repeat(parent, chosen, network, merger)
        applied = parent.version - expected
        parent.record_merge(request.id, request.fork_id, applied, merger)
        request.record_merge(parent.version, applied, by)
        self._save_together(expected, parent, request)
        return parent.version

    def close_merge_request(self, tenant_id: str, request_id: UUID, reason: str,
                            by: Actor) -> int:
        """Withdraw a merge request."""
        request = self.get_merge_request(tenant_id, request_id)
        expected = request.version
        request.close(reason, by)
        self._save_existing(request, expected)
        return request.version

    # -- BI sync --------------------------------------------------------------------------------
    # (domain.bi is imported in the methods so this section stays self-contained.)

    def register_bi_target(self, tenant_id: str, name: str, kind: str, by: Actor,
                           trigger_url: str = "", status_url: str = "") -> UUID:
        """Register a BI target: `builtin` dashboard tables or an `external` HTTP tool."""
        from domain.bi import BiTarget

        self.require_tenant(tenant_id)
        target = BiTarget.register(tenant_id, name, kind, by, trigger_url, status_url)
        self._save_new(target, f"BI target {name!r} already exists")
        return target.id

    def get_bi_target(self, tenant_id: str, target_id: UUID) -> Any:
        """A BI target of this tenant (a domain.bi.BiTarget)."""
        from domain.bi import BiTarget

        return self._get(BiTarget, tenant_id, target_id)

    def request_bi_rebuild(self, tenant_id: str, target_id: UUID, reason: str,
                           by: Actor) -> bool:
        """Request a rebuild; False when one is already pending (coalesced, nothing recorded)."""
        target = self.get_bi_target(tenant_id, target_id)
        expected = target.version
        requested = bool(target.request_rebuild(reason, by))
        if requested:
            self._save_existing(target, expected)
        return requested

    def start_bi_rebuild(self, tenant_id: str, target_id: UUID, position: int,
                         by: Actor) -> int:
        """Start the pending rebuild, to absorb the log up to `position`; its build number."""
        target = self.get_bi_target(tenant_id, target_id)
        expected = target.version
        build = int(target.start_rebuild(position, by))
        self._save_existing(target, expected)
        return build

    def complete_bi_rebuild(self, tenant_id: str, target_id: UUID, build: int,
                            by: Actor) -> None:
        """Record that the running build absorbed the log up to its start position."""
        target = self.get_bi_target(tenant_id, target_id)
        expected = target.version
        target.complete_rebuild(build, by)
        self._save_existing(target, expected)

    def fail_bi_rebuild(self, tenant_id: str, target_id: UUID, build: int, error: str,
                        by: Actor) -> None:
        """Record that the running build failed."""
        target = self.get_bi_target(tenant_id, target_id)
        expected = target.version
        target.fail_rebuild(build, error, by)
        self._save_existing(target, expected)

    # -- end of BI sync -------------------------------------------------------------------------

    # -- helpers ----------------------------------------------------------------------------

    def _get(self, kind: type[A], tenant_id: str, aggregate_id: UUID,
             version: int | None = None) -> A:
        self.require_tenant(tenant_id)
        try:
            aggregate: object = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(kind.__name__, aggregate_id) from None
        # Another tenant's aggregate is indistinguishable from a missing one.
        if not isinstance(aggregate, kind) or aggregate.tenant_id != tenant_id:
            raise NotFound(kind.__name__, aggregate_id)
        if version is not None and aggregate.version != version:
            raise NotFound(f"{kind.__name__} version", version)
        return aggregate

    def _get_at(self, kind: type[A], tenant_id: str, aggregate_id: UUID,
                expected_version: int) -> A:
        """The aggregate for a command based on `expected_version`.

        A cached copy at exactly that version is used without asking the store: if another
        process moved the aggregate on, the save fails on the version constraint and the
        caller gets the conflict it would have got anyway. Otherwise the cache is
        fast-forwarded as usual.
        """
        cached = self._peek_cache(aggregate_id)
        if isinstance(cached, kind) and cached.version == expected_version:
            if cached.tenant_id != tenant_id:
                raise NotFound(kind.__name__, aggregate_id)
            return copy.deepcopy(cached)
        aggregate = self._get(kind, tenant_id, aggregate_id)
        if aggregate.version != expected_version:
            raise VersionConflict(aggregate_id, expected_version, aggregate.version)
        return aggregate

    def _peek_cache(self, aggregate_id: UUID) -> object:
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            return cache.get(aggregate_id)
        except KeyError:
            return None

    def _change(self, tenant_id: str, run_id: UUID, command: Any) -> None:
        run = self.get_run(tenant_id, run_id)
        expected = run.version
        command(run)
        self._save_existing(run, expected)

    def _save_new(self, aggregate: TenantAggregate, message: str) -> None:
        try:
            self.save(aggregate)
        except IntegrityError:
            raise AlreadyExists(message) from None

    def _save_existing(self, aggregate: TenantAggregate, expected_version: int) -> None:
        try:
            self.save(aggregate)
        except IntegrityError:
            # The cached copy is fast-forwarded on the next get, so nothing to evict.
            raise VersionConflict(aggregate.id, expected_version, None) from None
        cached = self._peek_cache(aggregate.id)
        if self.repository.cache is not None and (
            cached is None or getattr(cached, "version", 0) < aggregate.version
        ):
            # The command is over: the saved object itself becomes the cached state.
            self.repository.cache.put(aggregate.id, aggregate)

    def _save_together(self, expected_version: int, *aggregates: TenantAggregate) -> None:
        """Save several aggregates in one transaction (all or none)."""
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise VersionConflict(aggregates[0].id, expected_version, None) from None
        if self.repository.cache is not None:
            for aggregate in aggregates:
                self.repository.cache.put(aggregate.id, aggregate)

    def _check_same_request(self, run: SimulationRun) -> None:
        existing = self.get_run(run.tenant_id, run.id)
        same = (existing.scenario_id, existing.scenario_version, existing.model,
                existing.parameters) == (run.scenario_id, run.scenario_version, run.model,
                                         run.parameters)
        if not same:
            raise InvalidCommand("this Idempotency-Key was used with a different request")


def _check(problem: str | None) -> None:
    if problem:
        raise InvalidCommand(problem)


def _repeat(parent: Scenario, records: list[EditRecord], network: NetworkIndex,
            by: Actor) -> None:
    """Record a merge request's chosen edits on the parent, in the fork's order: network
    edits through `apply_edits` (validated against the parent as it is, at most MAX_EDITS
    to a call), demand settings through `repeat_setting`."""
    batch: list[Edit] = []
    for record in records:
        if record["type"] in SETTING_TYPES:
            _apply_batch(parent, batch, network, by)
            parent.repeat_setting(record["type"], record["payload"], by)
        else:
            batch.append(as_edit(record))
            if len(batch) == MAX_EDITS:
                _apply_batch(parent, batch, network, by)
    _apply_batch(parent, batch, network, by)


def _apply_batch(parent: Scenario, batch: list[Edit], network: NetworkIndex, by: Actor) -> None:
    if batch:
        parent.apply_edits(list(batch), network, by)
        batch.clear()
