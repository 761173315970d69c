"""Request and response bodies (`XCreate` in, `XPublic` out)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.rules import MAX_POSITIONS
from domain.scenario import MAX_EDITS

# Schemas declare shapes and types. The rules on values (finite numbers, WGS84, positive
# capacities, lengths of names and ids, no control characters ...) are the domain's
# (domain/rules.py), so every door applies the same ones and lists every broken rule.
Name = str
# Numbers in request bodies are JSON numbers: `true` or `"5"` is not a capacity, `2.0` not a
# node id (an int is still a float), as in vehicle classes.
Number = Annotated[float, Field(strict=True)]
Integer = Annotated[int, Field(strict=True)]


class Strict(BaseModel):
    """Unknown fields are refused, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


# -- datasets ---------------------------------------------------------------------------

class GeoJsonDatasetCreate(Strict):
    """Links (LineStrings) and zones (Polygons) as GeoJSON FeatureCollections."""

    format: Literal["geojson"]
    name: Name
    links: dict[str, Any] = Field(description="FeatureCollection of LineStrings with id, "
                                  "from_node, to_node, capacity, length, free_flow_time")
    zones: dict[str, Any] = Field(description="FeatureCollection of Polygons (or a "
                                  "MultiPolygon of one polygon, or a Point for a zone "
                                  "without a polygon) with id, centroid_node, population, "
                                  "jobs")
    first_thru_node: Integer = 1
    demand: list[Any] | None = Field(None, description="The OD matrix, if any: "
                                     "[[origin zone, destination zone, trips], ...]")


class TntpDatasetCreate(Strict):
    """A TNTP network: the text of its `net`, `trips` and (optional) `node` files."""

    format: Literal["tntp"]
    name: Name
    net: str
    trips: str
    node: str | None = None
    crs: str | None = Field(None, max_length=10_000, description=(
        "the node file's CRS (e.g. EPSG:26916) when it is not WGS84 longitude/latitude"))


DatasetCreate = Annotated[GeoJsonDatasetCreate | TntpDatasetCreate,
                          Field(discriminator="format")]


class DatasetPublic(BaseModel):
    """An imported dataset."""

    id: UUID
    name: str
    network_sha256: str
    node_count: int
    link_count: int
    zone_count: int
    source_format: str
    version: int


class DatasetList(BaseModel):
    """A page of datasets."""

    items: list[DatasetPublic]
    next_offset: int | None = None


# -- scenarios --------------------------------------------------------------------------

class ScenarioCreate(Strict):
    """A new scenario on a dataset, or a fork of another scenario (at a version)."""

    name: Name
    dataset_id: UUID | None = None
    fork_of: UUID | None = None
    fork_version: Integer | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ScenarioCreate:
        if (self.dataset_id is None) == (self.fork_of is None):
            raise ValueError("give exactly one of dataset_id and fork_of")
        if self.fork_version is not None and self.fork_of is None:
            raise ValueError("fork_version needs fork_of")
        return self


class DemandMatrixPublic(BaseModel):
    """The demand matrix a scenario version uses (its trips are in a claim-check blob)."""

    scenario_id: UUID
    version: int
    sha256: str
    zone_count: int
    classes: dict[str, float]
    source_format: str


class VehicleClassCreate(Strict):
    """A vehicle class: PCE, value of time, cost factors, link types it may use (null: all)."""

    # Strict types too: `true` or `"1"` is not a PCE, `2.0` not a link type.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=64)
    pce: float = 1.0
    value_of_time: float = 1.0
    toll_factor: float = 0.0
    distance_factor: float = 0.0
    allowed_link_types: list[int] | None = Field(default=None, max_length=100)


class VehicleClassesUpdate(Strict):
    """The scenario's vehicle classes, replacing any declared before."""

    classes: list[VehicleClassCreate] = Field(min_length=1, max_length=10)


class ScenarioPublic(BaseModel):
    """A scenario's state at a version: its dataset plus its edits."""

    id: UUID
    name: str
    dataset_id: UUID
    fork_of: UUID | None
    fork_version: int | None
    version: int
    archived: bool
    demand: dict[str, Any]
    zone_attributes: dict[str, dict[str, float]]
    link_changes: dict[str, dict[str, float]]
    added_links: dict[str, dict[str, Any]]
    closed_links: list[str]
    demand_matrix: dict[str, Any] | None = None
    vehicle_classes: list[dict[str, Any]] = []


class ScenarioSummary(BaseModel):
    """A scenario as listed (from the read model)."""

    id: UUID
    name: str
    dataset_id: UUID
    fork_of: UUID | None
    fork_version: int | None
    version: int
    archived: bool
    updated_at: dt.datetime


class ScenarioList(BaseModel):
    """A page of scenarios."""

    items: list[ScenarioSummary]
    next_offset: int | None = None


class LinkCreate(Strict):
    """A new directed link with BPR parameters."""

    id: str
    from_node: Integer
    to_node: Integer
    capacity: Number
    length: Number
    free_flow_time: Number
    b: Number = 0.15
    power: Number = 4.0
    toll: Number = 0.0
    link_type: Integer = 1
    lanes: Number = 1.0
    geometry: list[tuple[Number, Number]] = Field(default_factory=list, max_length=MAX_POSITIONS)


class SetZoneAttributesEdit(Strict):
    """Set a zone's population and/or jobs."""

    op: Literal["set_zone_attributes"]
    zone_id: Integer
    population: Number | None = None
    jobs: Number | None = None


class AddLinkEdit(Strict):
    """Add a link between existing nodes."""

    op: Literal["add_link"]
    link: LinkCreate


class ModifyLinkEdit(Strict):
    """Change some of a link's attributes."""

    op: Literal["modify_link"]
    link_id: str
    capacity: Number | None = None
    free_flow_time: Number | None = None
    speed: Number | None = None
    lanes: Number | None = None
    toll: Number | None = None


class CloseLinkEdit(Strict):
    """Close a link to traffic."""

    op: Literal["close_link"]
    link_id: str


class ChangeDemandParametersEdit(Strict):
    """Change the gravity model's parameters."""

    op: Literal["change_demand_parameters"]
    trip_rate: Number | None = None
    deterrence: str | None = None
    beta: Number | None = None


EditCreate = Annotated[
    SetZoneAttributesEdit | AddLinkEdit | ModifyLinkEdit | CloseLinkEdit
    | ChangeDemandParametersEdit, Field(discriminator="op")]


class EditsCreate(Strict):
    """Edits applied together: all of them or none."""

    edits: list[EditCreate] = Field(min_length=1, max_length=MAX_EDITS)


class EditsPublic(BaseModel):
    """The scenario's version after the edits."""

    scenario_id: UUID
    version: int


class HistoryEventPublic(BaseModel):
    """One recorded event of an aggregate."""

    version: int
    type: str
    occurred_at: dt.datetime
    actor: str
    correlation_id: str
    payload: dict[str, Any]


class HistoryPublic(BaseModel):
    """An aggregate's events, oldest first."""

    id: UUID
    events: list[HistoryEventPublic]


# -- simulations ------------------------------------------------------------------------

class SimulationCreate(Strict):
    """Run a model on the scenario (at its current version unless given)."""

    model: str = "builtin"
    parameters: dict[str, Any] = Field(default_factory=dict)
    scenario_version: Integer | None = None


class SimulationPublic(BaseModel):
    """A simulation run's status, attempts, progress, timings and error."""

    id: UUID
    scenario_id: UUID
    scenario_version: int
    model: str
    parameters: dict[str, Any]
    status: str
    status_detail: str | None = None
    attempt: int
    max_attempts: int
    attempts_allowed: int
    progress: dict[str, float]
    last_error: str | None
    result_sha256: str | None
    indicators: dict[str, float]
    worker: str | None
    requested_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_s: float | None = None
    queue_position: int | None = Field(
        default=None, description="Waiting runs (all tenants) that start before this one")
    expected_start_at: dt.datetime | None = Field(
        default=None, description="Estimated start, from the live workers and recent runs")
    version: int


class IndicatorPublic(BaseModel):
    """One network-wide indicator of a run."""

    name: str
    value: float
    unit: str


class IndicatorList(BaseModel):
    """A run's indicators."""

    run_id: UUID
    indicators: list[IndicatorPublic]


class IndicatorDelta(BaseModel):
    """An indicator in both runs."""

    name: str
    unit: str
    value_a: float | None
    value_b: float | None
    difference: float | None


class LinkFlowDelta(BaseModel):
    """A link's flow in both runs (null where a run has no flow for it)."""

    link_id: str
    flow_a: float | None
    flow_b: float | None
    difference: float | None


class ComparisonPublic(BaseModel):
    """Indicator deltas and link-flow differences, b minus a."""

    a: UUID
    b: UUID
    indicators: list[IndicatorDelta]
    links: list[LinkFlowDelta]


class FeatureCollectionPublic(BaseModel):
    """A GeoJSON FeatureCollection page; `next` is the URL of the next page."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
    next: str | None = None


# -- BI ---------------------------------------------------------------------------------

class BiTargetCreate(Strict):
    """A BI target: the built-in dashboard tables or an external tool over HTTP."""

    name: Name
    kind: str = "builtin"
    trigger_url: str = ""
    status_url: str = ""


class BiTargetPublic(BaseModel):
    """A BI target's sync state."""

    id: UUID
    name: str
    kind: str
    pending: bool
    running_build: int | None
    builds: int
    completed_build: int | None
    started_position: int
    completed_position: int
    data_position: int
    dirty: bool
    last_error: str | None
    version: int


class BiTargetList(BaseModel):
    """The tenant's BI targets."""

    items: list[BiTargetPublic]


class RebuildPublic(BaseModel):
    """Whether a rebuild was requested now (false: one was already pending)."""

    target_id: UUID
    requested: bool


class StoragePublic(BaseModel):
    """What the tenant's stored files take, against its quota (null: no limit)."""

    used_bytes: int
    quota_bytes: int | None
    free_bytes: int | None

