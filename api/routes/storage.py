"""GET /v1/storage: what the tenant's stored files take, against its quota (decision 0717)."""

from __future__ import annotations

from fastapi import APIRouter

from api.json_body import StrictJsonRoute
from api.problems import ApiProblem
from api.schemas import StoragePublic
from api.security import Services, Viewer

router = APIRouter(prefix="/v1", tags=["storage"], route_class=StrictJsonRoute)


@router.get("/storage", response_model=StoragePublic)
def storage(caller: Viewer, services: Services) -> StoragePublic:
    """The bytes the tenant's networks, demand matrices and run files take, and its quota
    (null: no limit). An upload past the quota is refused with 507."""
    if services.storage_usage is None:
        raise ApiProblem(404, "Not found", "this server does not report storage")
    used, quota = services.storage_usage(caller.tenant)
    return StoragePublic(used_bytes=used, quota_bytes=quota,
                         free_bytes=None if quota is None else max(0, quota - used))
