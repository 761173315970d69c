"""Why a link changed between two runs: the edits behind one run and not the other."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.comparison import link_changes
from api.problems import ApiProblem
from api.review_schemas import ExplainedEdit, LinkExplanation
from api.routes.results import completed_run
from api.security import Services, Viewer
from domain.application import Cartolog

router = APIRouter(prefix="/v1", tags=["results"])
MISSING_SELECT_LINK = (
    "OD pairs whose use of the link changed, and the edited links on their paths: these "
    "need select-link results of the link in both runs, which runs do not produce yet")

NEIGHBOURS_SQL = """
SELECT other.link_id FROM scenario_links this
JOIN scenario_links other ON other.tenant_id = this.tenant_id
     AND other.scenario_id = this.scenario_id AND other.link_id <> this.link_id
     AND (other.from_node IN (this.from_node, this.to_node)
          OR other.to_node IN (this.from_node, this.to_node))
WHERE this.tenant_id = :tenant AND this.scenario_id = :scenario AND this.link_id = :link"""


@router.get("/compare/explain", response_model=LinkExplanation)
def explain(caller: Viewer, services: Services,
            a: Annotated[UUID, Query(description="The reference run")],
            b: Annotated[UUID, Query(description="The run compared with it")],
            link: Annotated[str, Query(min_length=1, max_length=200)]) -> LinkExplanation:
    """The link's change, and the edits (from the log) behind one run and not the other."""
    completed_run(services, caller.tenant, a)
    reads = completed_run(services, caller.tenant, b)
    change = next((c for c in link_changes(reads, a, b) if c["link_id"] == link), None)
    if change is None:
        raise ApiProblem(404, "Not found", f"link {link!r} is in neither run's results")
    run_b = services.app.get_run(caller.tenant, b)
    near = {str(r["link_id"]) for r in reads.rows(NEIGHBOURS_SQL, scenario=run_b.scenario_id,
                                                  link=link)}
    edits = edits_between(services.app, caller.tenant, a, b)
    return LinkExplanation(
        a=a, b=b, link_id=link, flow_a=change["flow_a"], flow_b=change["flow_b"],
        difference=change["difference"], significant=change["significant"],
        edits=[explained(e, side, link, near) for side, e in edits],
        od_pairs=None, missing=[MISSING_SELECT_LINK])


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


