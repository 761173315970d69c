"""The resolved model input of a run: its scenario (dataset network + edits at the requested
version) and its parameters, as the model's ``ModelInput``, stored by claim check.

The stored document is the model's ``cartolog.model-input/1`` (what an external model reads)
plus ``link_names``: the scenario's own link id of each model link (the model numbers links
1..n). Its sha256 is the blob key; ``input_hash`` is the model's content hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from adapters.demand_matrix import DemandMatrix
from domain.application import Cartolog
from domain.errors import DomainError, QuotaExceeded
from domain.ports import BlobStore, InputUnavailable, ResolvedInput
from domain.simulation import SimulationRun
from domain.values import Network as DatasetNetwork
from simulation_worker.external import input_document
from simulation_worker.model import (
    AddLink,
    AssignmentSettings,
    CloseLink,
    CostParameters,
    Edit,
    ExplicitDemand,
    GravityDemand,
    ModelInput,
    ModelInputError,
    Network,
    SetLinkCapacity,
    SetLinkLanes,
    SetLinkSpeed,
    SetZoneJobs,
    SetZonePopulation,
    Units,
    Zone,
    apply_edits,
    content_hash,
)
from simulation_worker.model.classes import VehicleClass
from simulation_worker.model.select_link import LinkSelection

ASSIGNMENT_PARAMETERS = {"algorithm": "algorithm", "relative_gap": "relative_gap",
                         "gap": "relative_gap", "max_iterations": "max_iterations",
                         "max_iter": "max_iterations", "unreachable_demand": "unreachable"}


@dataclass(frozen=True, eq=False)
class RunInput:
    """A model input and the scenario link id of each model link; with vehicle classes, each
    class's trips (the model's demand is then their sum)."""

    model: ModelInput
    link_names: tuple[str, ...]
    classes: tuple[VehicleClass, ...] = ()
    class_trips: dict[str, np.ndarray] = field(default_factory=dict)
    selections: tuple[LinkSelection, ...] = ()

    def input_hash(self) -> str:
        """The model's content hash, extended by the classes and their trips when declared."""
        base = content_hash(self.model)
        if not self.classes:
            return base
        digest = hashlib.sha256(base.encode())
        digest.update(json.dumps([asdict(c) for c in self.classes], sort_keys=True).encode())
        digest.update(json.dumps([asdict(s) for s in self.selections]).encode())
        for name in sorted(self.class_trips):
            digest.update(name.encode() + np.ascontiguousarray(self.class_trips[name]).tobytes())
        return digest.hexdigest()

    def document(self) -> bytes:
        """The claim-check blob: ``cartolog.model-input/1`` plus ``link_names`` (and the
        vehicle classes with their trips, when declared)."""
        doc = input_document(self.model, content_hash(self.model))
        doc["link_names"] = list(self.link_names)
        if self.classes:
            doc["vehicle_classes"] = [asdict(c) for c in self.classes]
            doc["class_trips"] = {k: v.tolist() for k, v in self.class_trips.items()}
            doc["select_links"] = [asdict(s) for s in self.selections]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def resolve(app: Cartolog, run: SimulationRun) -> RunInput:
    """The run's scenario at its requested version, on its dataset, with its parameters."""
    scenario = app.get_scenario(run.tenant_id, run.scenario_id, run.scenario_version)
    network = app.load_network(run.tenant_id, scenario.network_sha256)
    run_input = build(network, scenario.edited_state(), run.parameters)
    if scenario.demand_matrix is not None:
        content = app.demand_matrix_content(run.tenant_id, run.scenario_id,
                                            run.scenario_version)
        classes = tuple(vehicle_class(c) for c in scenario.vehicle_classes)
        run_input = with_matrix(run_input, DemandMatrix.from_blob(content), classes)
    return with_selections(run_input, run.parameters.get("select_links") or [])


def with_selections(run_input: RunInput, declared: list[dict[str, Any]]) -> RunInput:
    """The run's select-link sets (scenario link ids to model link positions); a run with
    selections assigns by classes (one class ``all`` when none are declared)."""
    if not declared:
        return run_input
    if not isinstance(run_input.model.demand, ExplicitDemand):
        raise ModelInputError("select-link analysis needs an OD matrix (the gravity model's "
                              "demand is not supported)")
    position = {name: i for i, name in enumerate(run_input.link_names)}
    selections = tuple(LinkSelection(s["name"], tuple(position[k] for k in s["links"]),
                                     s.get("mode", "or")) for s in declared)
    if run_input.classes:
        return replace(run_input, selections=selections)
    costs = run_input.model.costs
    single = VehicleClass("all", toll_factor=costs.toll_factor,
                          distance_factor=costs.distance_factor)
    trips = np.asarray(run_input.model.demand.trips, dtype=np.float64)
    return replace(run_input, classes=(single,), class_trips={"all": trips},
                   selections=selections)


def vehicle_class(declared: dict[str, Any]) -> VehicleClass:
    """A class as the scenario declared it (``Scenario.vehicle_classes``)."""
    allowed = declared.get("allowed_link_types")
    return VehicleClass(**{**declared, "allowed_link_types": None if allowed is None
                           else tuple(int(t) for t in allowed)})


def with_matrix(run_input: RunInput, matrix: DemandMatrix,
                classes: tuple[VehicleClass, ...] = ()) -> RunInput:
    """The scenario's demand matrix replaces any other demand: split by the declared
    classes (each must be in the matrix), else all its classes summed."""
    zone_ids = tuple(zone.id for zone in run_input.model.zones)
    missing = [c.name for c in classes if c.name not in matrix.trips]
    if missing:
        raise ModelInputError(f"the demand matrix has no trips for class(es) "
                              f"{', '.join(missing)}; it has {', '.join(matrix.trips)}")
    class_trips = {c.name: matrix.aligned(zone_ids, c.name) for c in classes}
    total = np.sum(list(class_trips.values()), axis=0) if classes else matrix.aligned(zone_ids)
    model = replace(run_input.model, demand=ExplicitDemand(total))
    return RunInput(model, run_input.link_names, classes, class_trips)


def store(app: Cartolog, blobs: BlobStore, run: SimulationRun, model_version: str
          ) -> ResolvedInput:
    """Resolve the run's input and store it; InputUnavailable when it cannot be built."""
    try:
        run_input = resolve(app, run)
        document = run_input.document()
    except (DomainError, ModelInputError, KeyError, ValueError) as error:
        raise InputUnavailable(f"{type(error).__name__}: {error}") from error
    try:
        sha256 = blobs.put(run.tenant_id, document)
    except (QuotaExceeded, ValueError) as error:  # over the quota, or the blob size limit
        raise InputUnavailable(f"the run's input cannot be stored: {error}") from error
    return ResolvedInput(sha256, run_input.input_hash(), model_version)


def build(network: DatasetNetwork, edited: dict[str, Any],
          parameters: dict[str, Any]) -> RunInput:
    """Dataset network + scenario edits (``Scenario.edited_state()``) + run parameters."""
    base, names = _base(network, edited.get("link_changes", {}), parameters)
    edits, names = _edits(edited, names)
    run_input = RunInput(apply_edits(base, edits), tuple(names))
    return with_demand(run_input, edited["demand"]) if edited.get("demand") else run_input


def _base(network: DatasetNetwork, changes: dict[str, dict[str, float]],
          parameters: dict[str, Any]) -> tuple[ModelInput, list[str]]:
    links = network.links
    names = [link.id for link in links]

    def column(name: str, default_key: str | None = None) -> np.ndarray:
        key = default_key or name
        return np.array([changes.get(k.id, {}).get(key, getattr(k, name)) for k in links],
                        dtype=np.float64)

    nodes = network.nodes
    net = Network(
        node_ids=np.array([n.id for n in nodes], dtype=np.int64),
        node_x=np.array([n.x for n in nodes], dtype=np.float64),
        node_y=np.array([n.y for n in nodes], dtype=np.float64),
        link_ids=np.arange(1, len(links) + 1, dtype=np.int64),
        link_from=np.array([k.from_node for k in links], dtype=np.int64),
        link_to=np.array([k.to_node for k in links], dtype=np.int64),
        capacity=np.array([k.capacity for k in links], dtype=np.float64),
        length=np.array([k.length for k in links], dtype=np.float64),
        free_flow_time=column("free_flow_time"),
        bpr_b=np.array([k.b for k in links], dtype=np.float64),
        bpr_power=np.array([k.power for k in links], dtype=np.float64),
        toll=column("toll"),
        speed_limit=np.zeros(len(links), dtype=np.float64),
        lanes=np.array([k.lanes for k in links], dtype=np.float64),
        link_type=np.array([k.link_type for k in links], dtype=np.int64),
        link_open=np.ones(len(links), dtype=np.bool_),
        first_thru_node=network.first_thru_node,
    )
    zones = tuple(Zone(z.id, z.centroid_node, z.population, z.jobs,
                       tuple(z.polygon[0]) if z.polygon else None) for z in network.zones)
    model = ModelInput(network=net, zones=zones, demand=_demand(network, zones),
                       costs=CostParameters(), units=Units(),
                       assignment=_assignment(parameters),
                       accessibility_minutes=float(parameters.get("accessibility_minutes", 30)))
    return model, names


def _demand(network: DatasetNetwork, zones: tuple[Zone, ...]) -> ExplicitDemand | GravityDemand:
    if not network.od_matrix:
        return GravityDemand()
    index = {z.id: i for i, z in enumerate(zones)}
    trips = np.zeros((len(zones), len(zones)))
    for origin, destination, count in network.od_matrix:
        trips[index[origin], index[destination]] += count
    return ExplicitDemand(trips)


def _assignment(parameters: dict[str, Any]) -> AssignmentSettings:
    chosen = {field: parameters[key] for key, field in ASSIGNMENT_PARAMETERS.items()
              if key in parameters}
    return replace(AssignmentSettings(), **chosen)


def _edits(edited: dict[str, Any], names: list[str]) -> tuple[list[Edit], list[str]]:
    names = list(names)
    edits: list[Edit] = []
    for link_id, link in edited.get("added_links", {}).items():
        names.append(link_id)
        edits.append(AddLink(
            link_id=len(names), from_node=link["from_node"], to_node=link["to_node"],
            capacity=link["capacity"], length=link["length"],
            free_flow_time=link["free_flow_time"], bpr_b=link.get("b", 0.15),
            bpr_power=link.get("power", 4.0), toll=link.get("toll", 0.0),
            lanes=link.get("lanes", 1.0), link_type=link.get("link_type", 1)))
    number = {name: i + 1 for i, name in enumerate(names)}
    for link_id, change in edited.get("link_changes", {}).items():
        edits.extend(_link_edits(number[link_id], change))
    edits.extend(CloseLink(number[link_id]) for link_id in edited.get("closed_links", []))
    for zone_id, values in edited.get("zone_attributes", {}).items():
        if values.get("population") is not None:
            edits.append(SetZonePopulation(int(zone_id), float(values["population"])))
        if values.get("jobs") is not None:
            edits.append(SetZoneJobs(int(zone_id), float(values["jobs"])))
    return edits, names


def _link_edits(link: int, change: dict[str, float]) -> list[Edit]:
    edits: list[Edit] = []
    if change.get("lanes") is not None:
        edits.append(SetLinkLanes(link, float(change["lanes"])))
    if change.get("capacity") is not None:
        edits.append(SetLinkCapacity(link, float(change["capacity"])))
    if change.get("speed") is not None:
        edits.append(SetLinkSpeed(link, float(change["speed"])))
    return edits


def with_demand(run_input: RunInput, demand: dict[str, Any]) -> RunInput:
    """The scenario's gravity parameters (trip rate, deterrence, beta) applied."""
    if not isinstance(run_input.model.demand, GravityDemand):
        return run_input
    gravity = replace(run_input.model.demand, trip_rate=float(demand["trip_rate"]),
                      deterrence=demand["deterrence"], beta=float(demand["beta"]))
    return RunInput(replace(run_input.model, demand=gravity), run_input.link_names)


def load(document: bytes) -> RunInput:
    """Inverse of ``RunInput.document``."""
    doc = json.loads(document)
    links = doc["network"]["links"]
    nodes = doc["network"]["nodes"]

    def floats(key: str) -> np.ndarray:
        return np.array([link[key] for link in links], dtype=np.float64)

    net = Network(
        node_ids=np.array([n["id"] for n in nodes], dtype=np.int64),
        node_x=np.array([_nan(n["x"]) for n in nodes], dtype=np.float64),
        node_y=np.array([_nan(n["y"]) for n in nodes], dtype=np.float64),
        link_ids=np.array([k["id"] for k in links], dtype=np.int64),
        link_from=np.array([k["from"] for k in links], dtype=np.int64),
        link_to=np.array([k["to"] for k in links], dtype=np.int64),
        capacity=floats("capacity"), length=floats("length"),
        free_flow_time=floats("free_flow_time"), bpr_b=floats("bpr_b"),
        bpr_power=floats("bpr_power"), toll=floats("toll"), speed_limit=floats("speed_kmh"),
        lanes=floats("lanes"),
        link_type=np.array([k["type"] for k in links], dtype=np.int64),
        link_open=np.array([k["open"] for k in links], dtype=np.bool_),
        first_thru_node=int(doc["network"]["first_thru_node"]),
    )
    zones = tuple(Zone(z["id"], z["centroid"], z["population"], z["jobs"],
                       tuple(tuple(p) for p in z["polygon"]) if z["polygon"] else None)
                  for z in doc["zones"])
    demand_doc = dict(doc["demand"])
    kind = demand_doc.pop("kind")
    demand: ExplicitDemand | GravityDemand = (
        ExplicitDemand(np.array(demand_doc["trips"], dtype=np.float64)) if kind == "explicit"
        else GravityDemand(**demand_doc))
    model = ModelInput(net, zones, demand, CostParameters(**doc["costs"]), Units(**doc["units"]),
                       AssignmentSettings(**doc["assignment"]),
                       float(doc["accessibility_minutes"]))
    classes = tuple(vehicle_class(c) for c in doc.get("vehicle_classes", []))
    class_trips = {k: np.array(v, dtype=np.float64) for k, v in doc.get("class_trips", {}).items()}
    selections = tuple(LinkSelection(s["name"], tuple(s["links"]), s["mode"])
                       for s in doc.get("select_links", []))
    return RunInput(model, tuple(doc["link_names"]), classes, class_trips, selections)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
