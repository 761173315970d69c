"""End to end over HTTP with the real pipeline (relay, dispatcher, worker, recorder,
projector): Sioux Falls, a scenario and its fork with a loaded link closed, both simulated,
compared; results as GeoJSON and vector tiles; notifications as Server-Sent Events."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from infra import projections_wiring
from infra.wiring import Container
from tests.integration.api.conftest import SIOUX_FALLS, Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401
from tests.integration.jobs.harness import pipeline


@contextlib.contextmanager
def whole_pipeline(container: Container) -> Iterator[None]:  # noqa: F811
    with pipeline(container) as running:
        running.worker_thread()
        projector = projections_wiring.projector(container)
        thread = threading.Thread(target=projector.run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            projector.stop()
            thread.join(30)


def wait_completed(api: Api, run_id: str, timeout: float = 120) -> dict[str, Any]:  # noqa: F811
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = api.get(f"/v1/simulations/{run_id}").json()
        # Status comes from the store, timings from the read model: wait for both.
        if run["status"] in ("dead_lettered", "cancelled"):
            raise AssertionError(run)
        if run["status"] == "completed" and run["finished_at"] is not None:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.3)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def simulate(api: Api, scenario: str, key: str) -> str:  # noqa: F811
    body = {"model": "builtin", "parameters": {"gap": 1e-4, "reuse": False}}
    response = api.post(f"/v1/scenarios/{scenario}/simulations", body,
                        headers={"Idempotency-Key": key})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/simulations/{response.json()['id']}"
    again = api.post(f"/v1/scenarios/{scenario}/simulations", body,
                     headers={"Idempotency-Key": key})
    assert again.json()["id"] == response.json()["id"]
    other = {**body, "parameters": {"gap": 1e-3}}
    assert api.post(f"/v1/scenarios/{scenario}/simulations", other,
                    headers={"Idempotency-Key": key}).status_code == 422
    return str(response.json()["id"])


def test_sioux_falls_fork_with_a_closed_link(api: Api, container: Container  # noqa: F811
                                             ) -> None:
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "Sioux Falls", **files})
        assert dataset.status_code == 201, dataset.text
        base = api.scenario(dataset=dataset.json()["id"])
        fork = api.post("/v1/scenarios", {"name": "fork", "fork_of": base}).json()["id"]
        assert [s["id"] for s in api.get("/v1/scenarios", params={"wait": 20}).json()["items"]
                ][:2] == [fork, base]
        run_a = simulate(api, base, f"a-{base}")
        wait_completed(api, run_a)
        links = api.get(f"/v1/simulations/{run_a}/links").json()["features"]
        loaded = max(links, key=lambda f: f["properties"]["flow"])["properties"]
        edit = {"edits": [{"op": "close_link", "link_id": loaded["link_id"]}]}
        edited = api.post(f"/v1/scenarios/{fork}/edits", edit, headers={"If-Match": '"1"'})
        assert edited.status_code == 200, edited.text
        run_b = simulate(api, fork, f"b-{fork}")
        finished = wait_completed(api, run_b)
        assert finished["attempt"] == 1 and finished["finished_at"] is not None
        check_comparison(api, run_a, run_b, loaded, links)
        check_geojson_and_tiles(api, run_b, fork)
        check_notifications(api, run_a, run_b)


def check_comparison(api: Api, run_a: str, run_b: str, closed: dict[str, Any],  # noqa: F811
                     links: list[dict[str, Any]]) -> None:
    comparison = api.get("/v1/compare", params={"a": run_a, "b": run_b, "all": "true"}).json()
    flows = {row["link_id"]: row for row in comparison["links"]}
    assert flows[closed["link_id"]]["significant"] and flows[closed["link_id"]]["flow_a"] > 0
    assert flows[closed["link_id"]]["flow_b"] == 0
    alternatives = [f["properties"]["link_id"] for f in links
                    if f["properties"]["from_node"] == closed["from_node"]
                    and f["properties"]["link_id"] != closed["link_id"]]
    assert alternatives and sum(flows[k]["difference"] for k in alternatives) > 0
    indicators = {row["name"]: row for row in comparison["indicators"]}
    trips = indicators["total_trips"]
    assert trips["value_a"] > 0 and math.isclose(trips["value_a"], trips["value_b"],
                                                 rel_tol=1e-9)
    assert indicators["vehicle_hours"]["difference"] > 0


def check_geojson_and_tiles(api: Api, run: str, scenario: str) -> None:  # noqa: F811
    page = api.get(f"/v1/simulations/{run}/links", params={"limit": 30}).json()
    assert len(page["features"]) == 30 and "offset=30" in page["next"]
    bbox = "-96.80,43.55,-96.74,43.60"
    boxed = api.get(f"/v1/simulations/{run}/links", params={"bbox": bbox}).json()["features"]
    assert 0 < len(boxed) < 76
    zones = api.get(f"/v1/simulations/{run}/zones").json()["features"]
    assert len(zones) == 24 and zones[0]["geometry"]["type"] == "Point"
    x, y = tile_of(-96.75, 43.55, 10)
    tile = api.get(f"/v1/tiles/link_results/10/{x}/{y}.mvt", params={"run": run})
    assert tile.status_code == 200 and len(tile.content) > 100
    assert tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert "immutable" in tile.headers["cache-control"]
    cached = api.get(f"/v1/tiles/link_results/10/{x}/{y}.mvt", params={"run": run},
                     headers={"If-None-Match": tile.headers["etag"]})
    assert cached.status_code == 304
    zones_tile = api.get(f"/v1/tiles/zones/10/{x}/{y}.mvt", params={"scenario": scenario})
    assert zones_tile.status_code == 200 and zones_tile.content


def sse_events(api: Api, last_event_id: str) -> list[dict[str, str]]:  # noqa: F811
    events: list[dict[str, str]] = []
    headers = {**api.headers("acme", "viewer"), "Last-Event-ID": last_event_id}
    with api.client.stream("GET", "/v1/notifications", params={"duration": 1.5},
                           headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if "id" in current:
                    events.append(current)
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = value
    return events


def check_notifications(api: Api, run_a: str, run_b: str) -> None:  # noqa: F811
    deadline = time.monotonic() + 30
    while True:
        events = [e for e in sse_events(api, "0") if e["event"] == "simulation.completed"]
        if len(events) >= 2 or time.monotonic() > deadline:
            break
    subjects = [e["data"] for e in events]
    assert run_a in subjects[0] and run_b in subjects[1]
    resumed = sse_events(api, events[0]["id"])
    assert [e["id"] for e in resumed] == [events[1]["id"]]
