"""BI targets: sync state (viewer), register and request rebuilds (admin)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from api.json_body import StrictJsonRoute
from api.reads import TenantReads, wait_until_visible
from api.routes.common import Wait, Writes
from api.schemas import BiTargetCreate, BiTargetList, BiTargetPublic, RebuildPublic
from api.security import Admin, Services, Viewer
from domain.bi import EXTERNAL
from domain.errors import InvalidCommand

router = APIRouter(prefix="/v1/bi/targets", tags=["bi"], route_class=StrictJsonRoute)
# bi_targets and tenant_data are the bi_sync projection's tables (projections/bi.py), not the
# read model's: reads wait for that projection to hold the tenant's last write.
PROJECTION = "bi_sync"

TARGETS_SQL = """
SELECT t.target_id AS id, t.name, t.kind, t.pending, t.running_build, t.builds,
       t.completed_build, t.started_position, t.completed_position,
       coalesce(d.data_position, 0) AS data_position,
       coalesce(d.data_position, 0) > t.started_position AS dirty, t.last_error, t.version
FROM bi_targets t LEFT JOIN tenant_data d ON d.tenant_id = t.tenant_id
WHERE t.tenant_id = :tenant ORDER BY t.name"""


@router.get("", response_model=BiTargetList)
def list_targets(caller: Viewer, services: Services, writes: Writes,
                 wait: Wait = None) -> BiTargetList:
    """The tenant's BI targets and their sync state (dirty, pending, running, completed)."""
    timeout = services.limits.read_wait_s if wait is None else wait
    wait_until_visible(services.engine, PROJECTION, writes, caller.tenant, timeout)
    rows = TenantReads(services.engine, caller.tenant).rows(TARGETS_SQL)
    return BiTargetList(items=[BiTargetPublic.model_validate(dict(r)) for r in rows])


@router.post("", status_code=201, response_model=RebuildPublic)
def register_target(body: BiTargetCreate, caller: Admin, services: Services, writes: Writes,
                    response: Response) -> RebuildPublic:
    """Register a BI target (admin). An external target's URLs must be valid and their hosts
    resolve to public addresses only, unless CARTOLOG_BI_ALLOW_PRIVATE_HOSTS (decision 0712)."""
    if body.kind == EXTERNAL:
        urls = (("trigger_url", body.trigger_url), ("status_url", body.status_url))
        found = [p for p in (services.bi_hosts.url_problem(what, url)
                             for what, url in urls if url) if p]
        if found:
            raise InvalidCommand("the BI target was rejected", found)
    target_id = services.app.register_bi_target(caller.tenant, body.name, body.kind,
                                                caller.actor, body.trigger_url, body.status_url)
    writes.record(caller.tenant, target_id, 1)
    response.headers["Location"] = f"/v1/bi/targets/{target_id}"
    return RebuildPublic(target_id=target_id, requested=False)


@router.post("/{target_id}/rebuilds", status_code=202, response_model=RebuildPublic)
def request_rebuild(target_id: UUID, caller: Admin, services: Services,
                    writes: Writes) -> RebuildPublic:
    """Request a rebuild (coalesced: false when one is already pending) (admin)."""
    requested = services.app.request_bi_rebuild(caller.tenant, target_id,
                                                f"requested by {caller.sub}", caller.actor)
    if requested:
        target = services.app.get_bi_target(caller.tenant, target_id)
        writes.record(caller.tenant, target_id, int(target.version))
    return RebuildPublic(target_id=target_id, requested=requested)
