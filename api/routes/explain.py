"""Why a link changed between two runs: the edits behind one run and not the other, and the
OD pairs whose use of the link changed most (select-link of the link in both runs, from the
runs themselves or from companion runs; decision 0704)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

import numpy as np
from fastapi import APIRouter, Query, Response

from adapters.demand_matrix import read_select_link
from api.comparison import link_changes
from api.json_body import StrictJsonRoute
from api.problems import ApiProblem
from api.reads import TenantReads
from api.review_schemas import (
    CompanionRun,
    ExplainCompanions,
    ExplainCreate,
    ExplainedEdit,
    ExplainedPair,
    LinkExplanation,
    PairOnEditedLink,
    SelectLinkSource,
)
from api.routes.common import Writes
from api.routes.results import completed_run
from api.security import Editor, Services, Viewer
from api.services import ApiServices
from domain.application import Cartolog
from domain.demand import MAX_SELECTED_LINKS
from domain.errors import NotFound
from domain.simulation import COMPLETED, SimulationRun
from domain.values import CARTOLOG_NAMESPACE

router = APIRouter(prefix="/v1", tags=["results"], route_class=StrictJsonRoute)
Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")
USED = 1e-6  # trips: below this a pair did not use a link (Frank-Wolfe's early loadings)
SELECTION_PREFIX = "explain-"

NEIGHBOURS_SQL = """
SELECT other.link_id FROM scenario_links this
JOIN scenario_links other ON other.tenant_id = this.tenant_id
     AND other.scenario_id = this.scenario_id AND other.link_id <> this.link_id
     AND (other.from_node IN (this.from_node, this.to_node)
          OR other.to_node IN (this.from_node, this.to_node))
WHERE this.tenant_id = :tenant AND this.scenario_id = :scenario AND this.link_id = :link"""

CANDIDATES_SQL = """
SELECT run_id FROM simulation_runs
WHERE tenant_id = :tenant AND scenario_id = :scenario AND scenario_version = :version
  AND model = :model AND status = 'completed' AND parameters -> 'select_links' IS NOT NULL
  AND run_id <> :run
ORDER BY finished_at DESC NULLS LAST, run_id LIMIT 50"""


@dataclass
class Plan:
    """What an explanation of `link` between runs a and b follows by select-link."""

    link: str
    runs: dict[Side, SimulationRun]
    edits: list[ExplainedEdit]
    followed: list[str]  # the link, then edited links (at most MAX_SELECTED_LINKS in all)
    dropped: list[str]  # edited links left out (too many)
    open_links: dict[Side, list[str]] = field(default_factory=dict)  # selectable per side

    def selections(self, side: Side) -> list[dict[str, Any]]:
        """The companion run's `select_links`: one selection per link open on that side."""
        return [{"name": f"{SELECTION_PREFIX}{i}", "links": [k], "mode": "or"}
                for i, k in enumerate(self.open_links[side])]

    def companion_key(self, side: Side) -> str:
        """The Idempotency-Key of the companion: repeating the POST gives the same run."""
        selected = json.dumps(self.open_links[side]).encode()
        return f"explain:{self.runs[side].id}:{hashlib.sha256(selected).hexdigest()[:16]}"


@router.get("/compare/explain", response_model=LinkExplanation)
def explain(caller: Viewer, services: Services,
            a: Annotated[UUID, Query(description="The reference run")],
            b: Annotated[UUID, Query(description="The run compared with it")],
            link: Annotated[str, Query(min_length=1, max_length=200)],
            top: Annotated[int, Query(ge=1, le=1000, description="OD pairs listed")] = 20,
            ) -> LinkExplanation:
    """The link's change, the edits (from the log) behind one run and not the other, and the
    OD pairs whose trips via the link changed most, with the edited links they used. Reads
    only: when select-link results are missing, `missing` says what to POST."""
    change, reads, plan = _plan(services, caller.tenant, a, b, link)
    found = {side: _select_links(services.app, reads, caller.tenant, plan, side)
             for side in SIDES}
    sources = [SelectLinkSource(
        side=side, run_id=plan.runs[side].id, supplied_by=found[side].supplied_by,
        total=found[side].total(link), links=sorted(found[side].known()))
        for side in SIDES]
    missing = _missing(services.app, caller.tenant, plan, found)
    pairs = None
    if all(link in found[side].known() for side in SIDES):
        pairs = _pairs(plan, found["a"], found["b"], top)
    return LinkExplanation(
        a=a, b=b, link_id=link, flow_a=change["flow_a"], flow_b=change["flow_b"],
        difference=change["difference"], significant=change["significant"], edits=plan.edits,
        followed_links=plan.followed, select_link=sources, od_pairs=pairs, missing=missing)


@router.post("/compare/explain", status_code=202, response_model=ExplainCompanions)
def request_explanation(body: ExplainCreate, caller: Editor, services: Services,
                        writes: Writes, response: Response) -> ExplainCompanions:
    """Request, through the normal simulation path, the companion runs (same scenario
    version, model and parameters, plus select-link of the link and the edited links) that
    `GET /v1/compare/explain` needs; repeating it gives the same runs."""
    _, reads, plan = _plan(services, caller.tenant, body.a, body.b, body.link)
    for run in plan.runs.values():
        if run.model != "builtin":
            raise ApiProblem(422, "Invalid request", f"run {run.id} used model {run.model!r}; "
                             "select-link needs the builtin model")
    runs = []
    for side in SIDES:
        run = plan.runs[side]
        if not plan.open_links[side]:
            continue
        found = _select_links(services.app, reads, caller.tenant, plan, side)
        if set(plan.open_links[side]) <= found.known() and found.supplied_by is not None:
            supplier = services.app.get_run(caller.tenant, found.supplied_by)
            runs.append(CompanionRun(side=side, run_id=run.id, supplied_by=supplier.id,
                                     status=supplier.status, links=plan.open_links[side],
                                     requested=False))
            continue
        parameters = {**_base(run.parameters), "select_links": plan.selections(side)}
        companion_id = services.app.request_simulation(
            caller.tenant, run.scenario_id, run.model, parameters, caller.actor,
            scenario_version=run.scenario_version, idempotency_key=plan.companion_key(side))
        companion = services.app.get_run(caller.tenant, companion_id)
        writes.record(caller.tenant, companion_id, companion.version)
        runs.append(CompanionRun(side=side, run_id=run.id, supplied_by=companion_id,
                                 status=companion.status, links=plan.open_links[side],
                                 requested=True))
    location = f"/v1/compare/explain?a={body.a}&b={body.b}&link={quote(body.link, safe='')}"
    response.headers["Location"] = location
    return ExplainCompanions(a=body.a, b=body.b, link_id=body.link, location=location,
                             runs=runs)


def _plan(services: ApiServices, tenant: str, a: UUID, b: UUID, link: str
          ) -> tuple[dict[str, Any], TenantReads, Plan]:
    """The link's change (404 when neither run has it), the edits between the runs, and the
    links select-link follows on each side."""
    completed_run(services, tenant, a)
    reads = completed_run(services, tenant, b)
    change = next((c for c in link_changes(reads, a, b) if c["link_id"] == link), None)
    if change is None:
        raise ApiProblem(404, "Not found", f"link {link!r} is in neither run's results")
    app: Cartolog = services.app
    runs: dict[Side, SimulationRun] = {"a": app.get_run(tenant, a), "b": app.get_run(tenant, b)}
    near = {str(r["link_id"]) for r in reads.rows(NEIGHBOURS_SQL,
                                                  scenario=runs["b"].scenario_id, link=link)}
    edits = [explained(e, side, link, near) for side, e in edits_between(app, tenant, a, b)]
    followed, dropped = _followed(link, edits)
    plan = Plan(link, runs, edits, followed, dropped)
    for side in SIDES:
        run = runs[side]
        scenario = app.get_scenario(tenant, run.scenario_id, run.scenario_version)
        network = app.network_index(tenant, scenario.network_sha256)
        plan.open_links[side] = [k for k in followed if scenario.link_exists(k, network)]
    return change, reads, plan


def _followed(link: str, edits: list[ExplainedEdit]) -> tuple[list[str], list[str]]:
    """The link, then the edited links: on or next to the link first, then the latest."""
    ranked = sorted(edits, key=lambda e: (not e.on_link, not e.adjacent, -e.version))
    edited: list[str] = []
    for edit in ranked:
        linked = edit.subject.removeprefix("link:")
        if edit.subject.startswith("link:") and linked != link and linked not in edited:
            edited.append(linked)
    room = MAX_SELECTED_LINKS - 1
    return [link, *edited[:room]], edited[room:]


@dataclass
class Found:
    """One side's select-link OD matrices (trips summed over classes), per link."""

    zone_ids: tuple[int, ...] = ()
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)  # not open on this side: no trips via it
    supplied_by: UUID | None = None

    def known(self) -> set[str]:
        return set(self.matrices) | self.closed

    def total(self, link: str) -> float | None:
        if link in self.closed:
            return 0.0
        return float(self.matrices[link].sum()) if link in self.matrices else None


def _select_links(app: Cartolog, reads: TenantReads, tenant: str, plan: Plan,
                  side: Side) -> Found:
    """Select-link results of the followed links on one side: the run's own, else those of
    the completed run with identical inputs that selected the most of them."""
    run = plan.runs[side]
    found = Found(closed={k for k in plan.followed if k not in plan.open_links[side]})
    wanted = plan.open_links[side]
    best: tuple[int, SimulationRun, dict[str, str]] | None = None
    for candidate in _candidates(app, reads, tenant, run, _companion(app, tenant, plan, side)):
        names = _selected_names(candidate, wanted)
        if names and (best is None or len(names) > best[0]):
            best = (len(names), candidate, names)
        if len(names) == len(wanted):
            break
    if best is None:
        return found
    _, supplier, names = best
    output = json.loads(app.blobs.get(tenant, str(supplier.result_sha256)))
    stored = output.get("select_links", {})
    for link_id, name in names.items():
        if name not in stored:
            continue
        _, matrix = read_select_link(app.blobs.get(tenant, stored[name]))
        found.zone_ids = tuple(int(z) for z in matrix.zone_ids)
        found.matrices[link_id] = sum(
            (np.asarray(t, dtype=np.float64) for t in matrix.trips.values()),
            np.zeros((len(found.zone_ids),) * 2))
    found.supplied_by = supplier.id if found.matrices else None
    return found


def _candidates(app: Cartolog, reads: TenantReads, tenant: str, run: SimulationRun,
                companion: SimulationRun | None) -> Iterator[SimulationRun]:
    """The run, its companion, then the latest completed runs with identical inputs apart
    from `select_links` (from the read model; each checked against the log), lazily."""
    yield run
    if companion is not None and _same_inputs(companion, run):
        yield companion
    for row in reads.rows(CANDIDATES_SQL, scenario=run.scenario_id,
                          version=run.scenario_version, model=run.model, run=run.id):
        if companion is None or row["run_id"] != companion.id:
            other = app.get_run(tenant, row["run_id"])
            if _same_inputs(other, run):
                yield other


def _same_inputs(other: SimulationRun, run: SimulationRun) -> bool:
    """Completed, on the same scenario version and model, with the same parameters apart
    from `select_links`."""
    return (other.status == COMPLETED and other.result_sha256 is not None
            and other.scenario_id == run.scenario_id
            and other.scenario_version == run.scenario_version and other.model == run.model
            and _base(other.parameters) == _base(run.parameters))


def _selected_names(run: SimulationRun, wanted: list[str]) -> dict[str, str]:
    """Wanted link -> the name of the run's selection of exactly that link."""
    if run.status != COMPLETED or run.result_sha256 is None:
        return {}
    names: dict[str, str] = {}
    for selection in run.parameters.get("select_links") or []:
        links = selection.get("links") or []
        if len(links) == 1 and links[0] in wanted and links[0] not in names:
            names[links[0]] = str(selection["name"])
    return names


def _base(parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if k != "select_links"}


def _pairs(plan: Plan, a: Found, b: Found, top: int) -> list[ExplainedPair]:
    """The OD pairs whose trips via the link changed most, with the edited links they used."""
    zones = sorted(set(a.zone_ids) | set(b.zone_ids))

    def table(found: Found, link_id: str) -> np.ndarray | None:
        if link_id in found.closed:
            return np.zeros((len(zones), len(zones)))
        if link_id not in found.matrices:
            return None
        place = np.searchsorted(zones, found.zone_ids)
        out = np.zeros((len(zones), len(zones)))
        out[np.ix_(place, place)] = found.matrices[link_id]
        return out

    via_a, via_b = table(a, plan.link), table(b, plan.link)
    assert via_a is not None and via_b is not None
    difference = via_b - via_a
    used = np.flatnonzero(((via_a > 0) | (via_b > 0)).ravel())
    order = used[np.lexsort((used, -np.abs(difference.ravel()[used])))][:top]
    edited = [(k, table(a, k), table(b, k)) for k in plan.followed[1:]]
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), len(zones))
        on_edited = [PairOnEditedLink(link_id=k, flow_a=float(ta[i, j]), flow_b=float(tb[i, j]))
                     for k, ta, tb in edited if ta is not None and tb is not None
                     and max(ta[i, j], tb[i, j]) > USED]
        pairs.append(ExplainedPair(
            origin=zones[i], destination=zones[j], flow_a=float(via_a[i, j]),
            flow_b=float(via_b[i, j]), difference=float(difference[i, j]),
            edited_links=on_edited))
    return pairs


def _missing(app: Cartolog, tenant: str, plan: Plan, found: dict[Side, Found]) -> list[str]:
    """What the explanation lacks, and exactly what supplies it."""
    notes: list[str] = []
    for side in SIDES:
        run = plan.runs[side]
        lacking = [k for k in plan.open_links[side] if k not in found[side].known()]
        if not lacking:
            continue
        what = ", ".join(lacking)
        if run.model != "builtin":
            notes.append(f"select-link of {what} in run {run.id}: its model {run.model!r} "
                         "does not produce select-link results")
            continue
        companion = _companion(app, tenant, plan, side)
        if companion is None:
            body = json.dumps({"a": str(plan.runs["a"].id), "b": str(plan.runs["b"].id),
                               "link": plan.link})
            notes.append(f"select-link of {what} in run {run.id}: POST /v1/compare/explain "
                         f"{body} requests a companion run that supplies it")
        elif companion.status in ("dead_lettered", "cancelled"):
            notes.append(f"select-link of {what} in run {run.id}: companion run "
                         f"{companion.id} is {companion.status}; redrive it")
        else:
            notes.append(f"select-link of {what} in run {run.id}: companion run "
                         f"{companion.id} is {companion.status}; ask again when it completed")
    if plan.dropped:
        notes.append(f"edited links not followed (select-link takes at most "
                     f"{MAX_SELECTED_LINKS} links): {', '.join(plan.dropped)}")
    return notes


def _companion(app: Cartolog, tenant: str, plan: Plan, side: Side) -> SimulationRun | None:
    """The companion run POST would request (or did), if it exists."""
    run_id = uuid.uuid5(CARTOLOG_NAMESPACE, f"run:{tenant}:{plan.companion_key(side)}")
    try:
        return app.get_run(tenant, run_id)
    except NotFound:
        return None


def edits_between(app: Cartolog, tenant: str, a: UUID, b: UUID
                  ) -> list[tuple[str, dict[str, Any]]]:
    """Edits behind run b and not run a (`b`), then behind a and not b (`a`)."""
    run_a, run_b = app.get_run(tenant, a), app.get_run(tenant, b)
    behind_a = app.edits_leading_to(tenant, run_a.scenario_id, run_a.scenario_version)
    behind_b = app.edits_leading_to(tenant, run_b.scenario_id, run_b.scenario_version)
    keys_a = {(e["scenario_id"], e["version"]) for e in behind_a}
    keys_b = {(e["scenario_id"], e["version"]) for e in behind_b}
    return ([("b", e) for e in behind_b if (e["scenario_id"], e["version"]) not in keys_a]
            + [("a", e) for e in behind_a if (e["scenario_id"], e["version"]) not in keys_b])


def explained(edit: dict[str, Any], side: str, link: str, near: set[str]) -> ExplainedEdit:
    """One edit, marked when it is on the link or on a link that shares a node with it."""
    subject = str(edit["subject"])
    return ExplainedEdit.model_validate({
        **edit, "only_in": side, "on_link": subject == f"link:{link}",
        "adjacent": subject.removeprefix("link:") in near and subject.startswith("link:")})
