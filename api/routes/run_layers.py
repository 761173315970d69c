"""Map layers from a run's output document: the links a select-link analysis's demand uses
(GeoJSON), and the link flows of each vehicle class.

The analysis itself (per class: the selected demand's OD matrix and the link flows of only
that demand) is a blob of the run's output; the geometry comes from the read model. The
workspace draws the same figures over the scenario's vector tiles with feature-state
(docs/decisions/0501), so tiles need no select-link variant.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from adapters.demand_matrix import read_select_link
from api.routes.demand import gated
from api.routes.results import GEOJSON, completed_run
from api.routes.skims import run_output, select_link_blob
from api.security import Services, Viewer
from api.services import ApiServices

router = APIRouter(prefix="/v1/simulations", tags=["results"])

GEOMETRY_SQL = """
SELECT l.link_id, l.from_node, l.to_node, ST_AsGeoJSON(l.geom, 7)::json AS geometry
FROM scenario_links l
JOIN simulation_runs s ON s.tenant_id = l.tenant_id AND s.scenario_id = l.scenario_id
WHERE l.tenant_id = :tenant AND s.run_id = :run AND l.link_id = ANY(:links)
ORDER BY l.link_id"""


@router.get("/{run_id}/select-link/{name}/links", responses={200: {"content": {GEOJSON: {}}}})
async def select_link_flows(run_id: UUID, name: str, caller: Viewer, services: Services,
                            min_flow: Annotated[float, Query(ge=0, le=1e12)] = 1e-9,
                            ) -> JSONResponse:
    """GeoJSON of the links the selected demand uses (flow above `min_flow`): per class the
    flow of only that demand, its total, and whether the link is one of the selected."""
    return await gated(caller.tenant,
                       lambda: _select_link_flows(services, caller.tenant, run_id, name, min_flow))


def _select_link_flows(services: ApiServices, tenant: str, run_id: UUID, name: str,
                       min_flow: float) -> JSONResponse:
    header, _ = read_select_link(select_link_blob(services.app, tenant, run_id, name))
    by_link: dict[str, dict[str, float]] = {}
    for vehicle_class, flows in header["link_flows"].items():
        for link_id, flow in flows.items():
            by_link.setdefault(link_id, {})[vehicle_class] = float(flow)
    used = {link: flows for link, flows in by_link.items() if sum(flows.values()) > min_flow}
    reads = completed_run(services, tenant, run_id)
    rows = reads.rows(GEOMETRY_SQL, run=run_id, links=sorted(used))
    selected = set(header["links"])
    features = [_feature(row, used[row["link_id"]], row["link_id"] in selected)
                for row in rows]
    return JSONResponse({"type": "FeatureCollection", "name": header["name"],
                         "mode": header["mode"], "links": header["links"],
                         "features": features}, media_type=GEOJSON)


def _feature(row: Any, flows: dict[str, float], selected: bool) -> dict[str, Any]:
    return {"type": "Feature", "id": row["link_id"], "geometry": row["geometry"],
            "properties": {"link_id": row["link_id"], "from_node": row["from_node"],
                           "to_node": row["to_node"], "selected": selected,
                           "flow": sum(flows.values()), "class_flows": flows}}


@router.get("/{run_id}/class-flows")
async def class_flows(run_id: UUID, caller: Viewer, services: Services) -> dict[str, Any]:
    """Per vehicle class, the flow of that class on each link (vehicles, not PCE), for
    colouring the map by class. A run of one class lists the class `all`. The run's whole
    output document is read (a city's is tens of MB): built under the download gate (0708)."""
    return await gated(caller.tenant, lambda: _class_flows(services, caller.tenant, run_id))


def _class_flows(services: ApiServices, tenant: str, run_id: UUID) -> dict[str, Any]:
    output = run_output(services.app, tenant, run_id)
    links = output.get("links", [])
    flows: dict[str, dict[str, float]] = {}
    for link in links:
        by_class = link.get("class_flows") or {"all": link.get("flow", 0.0)}
        for vehicle_class, flow in by_class.items():
            flows.setdefault(vehicle_class, {})[str(link["id"])] = float(flow)
    return {"run_id": str(run_id), "classes": sorted(flows), "flows": flows}
