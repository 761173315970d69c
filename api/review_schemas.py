"""Request and response bodies of run history, scenario diffs, archive and merge requests."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas import IndicatorDelta, Strict


class RunSummary(BaseModel):
    """One run as the read model lists it."""

    id: UUID
    scenario_id: UUID
    scenario_version: int
    model: str
    parameters: dict[str, Any]
    status: str
    attempt: int
    max_attempts: int
    attempts_allowed: int
    worker: str | None
    last_error: str | None
    result_sha256: str | None
    duration_s: float | None
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    version: int
    indicators: dict[str, float] = Field(default_factory=dict)
    progress: dict[str, float] = Field(default_factory=dict)


class RunList(BaseModel):
    """A page of runs, most recently requested first."""

    items: list[RunSummary]
    next_offset: int | None


class EditRecordPublic(BaseModel):
    """One recorded edit: its scenario version, kind, what it changes, who and when."""

    version: int
    type: str
    subject: str
    actor: str
    occurred_at: dt.datetime
    correlation_id: str
    payload: dict[str, Any]


class ScenarioDiff(BaseModel):
    """The edits that lead from version `from_version` to `to_version`."""

    scenario_id: UUID
    from_version: int
    to_version: int
    edits: list[EditRecordPublic]
    subjects: list[str]


class ArchiveChange(Strict):
    """Why the scenario is archived or restored."""

    reason: str = Field(default="", max_length=2000)


class MergeRequestCreate(Strict):
    """Propose the fork's edits since its fork point for its parent."""

    title: str = Field(min_length=1, max_length=200)


class ReviewCreate(Strict):
    """A reviewer's verdict; a comment is required to request changes."""

    verdict: Literal["approved", "changes_requested"]
    comment: str = Field(default="", max_length=10_000)


class ResolutionCreate(Strict):
    """Settle a conflict: take the fork's or the parent's edits on `subject`."""

    subject: str = Field(min_length=1, max_length=300)
    take: Literal["fork", "parent"]


class CloseCreate(Strict):
    """Withdraw the request."""

    reason: str = Field(default="", max_length=2000)


class ConflictPublic(BaseModel):
    """A subject both sides changed since the fork point, with each side's edits."""

    subject: str
    fork: list[EditRecordPublic]
    parent: list[EditRecordPublic]
    resolution: str | None


class ReviewPublic(BaseModel):
    """One review."""

    reviewer: str
    verdict: str
    comment: str
    at: dt.datetime


class RunComparison(BaseModel):
    """The latest completed run of the parent (a) and of the fork (b), and their deltas:
    indicators, and the links whose change is beyond convergence noise (largest first)."""

    a: UUID
    b: UUID
    indicators: list[IndicatorDelta]
    significant_links: int
    links: list[LinkFlowChange]


class TrailEntry(BaseModel):
    """One step of the request: its event, actor and time."""

    version: int
    type: str
    actor: str
    occurred_at: dt.datetime
    payload: dict[str, Any]


class MergeRequestPublic(BaseModel):
    """A merge request: edits, conflicts now, reviews, the run comparison and its trail."""

    id: UUID
    title: str
    status: str
    author: str
    fork_id: UUID
    parent_id: UUID
    fork_point: int
    fork_version: int
    parent_version: int
    verdict: str | None
    merged_version: int | None
    version: int
    edits: list[EditRecordPublic]
    conflicts: list[ConflictPublic]
    reviews: list[ReviewPublic]
    comparison: RunComparison | None
    trail: list[TrailEntry]


class MergeRequestSummary(BaseModel):
    """A merge request as the list shows it."""

    id: UUID
    title: str
    status: str
    author: str
    fork_id: UUID
    parent_id: UUID
    verdict: str | None
    edit_count: int
    conflict_count: int
    merged_version: int | None
    opened_at: dt.datetime
    updated_at: dt.datetime
    version: int


class MergeRequestList(BaseModel):
    """A page of merge requests, most recently changed first."""

    items: list[MergeRequestSummary]
    next_offset: int | None


class LinkFlowChange(BaseModel):
    """A link's flow in both runs, and whether the difference exceeds convergence noise."""

    link_id: str
    flow_a: float | None
    flow_b: float | None
    difference: float | None
    significant: bool
    certain: bool
    noise_a: float
    noise_b: float


class ComparisonWithNoise(BaseModel):
    """Indicator deltas and link-flow changes (b minus a); noise is hidden unless asked for."""

    a: UUID
    b: UUID
    relative_gap_a: float | None
    relative_gap_b: float | None
    method: str
    significant_links: int
    links_within_noise: int
    indicators: list[IndicatorDelta]
    links: list[LinkFlowChange]


class ExplainedEdit(EditRecordPublic):
    """An edit behind one run and not the other."""

    scenario_id: UUID
    only_in: Literal["a", "b"]
    on_link: bool
    adjacent: bool


class PairOnEditedLink(BaseModel):
    """How much of an OD pair's demand used an edited link in each run (select-link)."""

    link_id: str
    flow_a: float
    flow_b: float


class ExplainedPair(BaseModel):
    """An OD pair whose demand via the link changed: its trips via the link in a and in b
    (select-link, summed over classes), and the edited links it used in either run."""

    origin: int | str
    destination: int | str
    flow_a: float
    flow_b: float
    difference: float
    edited_links: list[PairOnEditedLink]


class SelectLinkSource(BaseModel):
    """Where one side's select-link results come from: the run itself or a companion run
    (same scenario version, model and parameters, plus the selections)."""

    side: Literal["a", "b"]
    run_id: UUID
    supplied_by: UUID | None
    total: float | None = Field(description="Trips via the link in this run (select-link)")
    links: list[str] = Field(description="Links followed by select-link, or closed there")


class LinkExplanation(BaseModel):
    """Why a link's flow differs between two runs: the edits between them, the OD pairs whose
    use of the link changed most, and what is missing."""

    a: UUID
    b: UUID
    link_id: str
    flow_a: float | None
    flow_b: float | None
    difference: float | None
    significant: bool
    edits: list[ExplainedEdit]
    followed_links: list[str]
    select_link: list[SelectLinkSource]
    od_pairs: list[ExplainedPair] | None
    missing: list[str]


class ExplainCreate(Strict):
    """Request the select-link results an explanation needs."""

    a: UUID
    b: UUID
    link: str = Field(min_length=1, max_length=200)


class CompanionRun(BaseModel):
    """The run that supplies one side's select-link results (requested when needed)."""

    side: Literal["a", "b"]
    run_id: UUID
    supplied_by: UUID
    status: str
    links: list[str]
    requested: bool


class ExplainCompanions(BaseModel):
    """What `POST /v1/compare/explain` started; poll `location` (the explanation)."""

    a: UUID
    b: UUID
    link_id: str
    location: str
    runs: list[CompanionRun]


RunComparison.model_rebuild()
