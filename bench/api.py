"""API latency: GET /v1/scenarios/{id} and POST .../edits at 32 concurrent clients, and
city-wide vector tiles at TILE_CLIENTS concurrent clients, each beside a bare FastAPI endpoint at
the same concurrency, served by uvicorn on loopback in this process.

The tiles are the zoom-8 tile holding the whole Berlin-Center city (28,376 links, imported
through `POST /v1/datasets` as TNTP, bench/city.py): `links` of its scenario and `link_results`
of a run completed through the normal path with generated figures (the model is not run).
TILE_CLIENTS is 4: a map view loads a handful of tiles at once, not 32. Tiles are measured
twice: from the API as configured, which keeps built tiles in the process (decision 0504),
and from a second server with `tile_cache_mb=0`, where PostGIS builds every one (`_uncached`).

The bench ANALYZEs the read model after projecting it (see city_scenario).

Each side runs RUNS times (clients x REQUESTS requests each); the figures are the
medians over runs of p50 and p99. `--quick` uses fewer requests.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from bench import city
from bench.common import bench_database, figure, report
from domain.values import Actor, Link, Network, Node, Zone
from infra import projections_wiring
from infra.broker import free_port
from infra.http import build_api
from infra.settings import ApiSettings, Settings
from infra.wiring import build
from projections.read_model import ReadModel

CLIENTS = 32
TILE_CLIENTS = 4
TILE_ZOOM = 8
RUNS = 3
TENANT = "bench"
Request = Callable[[httpx.Client, int], httpx.Response]


def three_node_network() -> Network:
    """Three nodes, three links, two zones: the smallest network a scenario can edit."""
    nodes = (Node(1, 0.0, 0.0), Node(2, 0.01, 0.0), Node(3, 0.01, 0.01))
    links = (Link("a", 1, 2, 1000.0, 1.0, 1.0), Link("b", 2, 3, 1000.0, 1.0, 1.0),
             Link("c", 1, 3, 500.0, 2.0, 3.0))
    return Network(nodes, links, (Zone(1, 1, 100.0, 10.0), Zone(2, 3, 20.0, 80.0)))


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    def bare() -> dict[str, str]:
        return {"status": "ok"}
    return app


def percentiles(base: str, headers: dict[str, str], requests: int,
                make: Callable[[int], Request], clients: int = CLIENTS) -> tuple[float, float]:
    """p50 and p99 latency (ms) of `clients` clients sending `requests` requests each."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        send = make(index)
        own: list[float] = []
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            start.wait()
            for _ in range(requests):
                began = time.perf_counter()
                response = send(http, index)
                own.append((time.perf_counter() - began) * 1000)
                assert response.status_code < 300, response.text
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98]


def medians(results: list[tuple[float, float]]) -> tuple[float, float]:
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    requests = 15 if parser.parse_args().quick else 60
    with bench_database("cartolog_bench_api") as url:
        container = build(Settings(database_url=url))
        figures = measure(container, requests) + measure_tiles(container, requests)
        container.close()
    report("api", figures, clients=CLIENTS, tile_clients=TILE_CLIENTS, runs=RUNS,
           requests_per_client=requests)


def measure(container: Any, requests: int) -> list[dict[str, Any]]:
    actor = Actor("bench")
    container.app.register_tenant(TENANT, actor)
    dataset = container.app.import_dataset(TENANT, "tiny", three_node_network(), actor)
    scenarios = [container.app.create_scenario(TENANT, dataset, f"s{i}", actor)
                 for i in range(CLIENTS)]
    versions = {i: 1 for i in range(CLIENTS)}
    token = container.dev_issuer.issue(TENANT, "editor")
    headers = {"Authorization": f"Bearer {token}", "Host": f"{TENANT}.cartolog.example"}
    api = build_api(container, ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))

    def read(index: int) -> Request:
        return lambda http, i: http.get(f"/v1/scenarios/{scenarios[i]}")

    def edit(index: int) -> Request:
        def send(http: httpx.Client, i: int) -> httpx.Response:
            body = {"edits": [{"op": "modify_link", "link_id": "a",
                               "capacity": 1000.0 + versions[i]}]}
            response = http.post(f"/v1/scenarios/{scenarios[i]}/edits", json=body,
                                 headers={"If-Match": f'"{versions[i]}"'})
            versions[i] = response.json()["version"]
            return response
        return send

    def bare(index: int) -> Request:
        return lambda http, i: http.get("/bare")

    found: dict[str, list[tuple[float, float]]] = {"bare": [], "read": [], "edit": []}
    with serving(api) as cartolog, serving(bare_app()) as baseline:
        for _ in range(RUNS):  # interleaved, so each side sees the same machine noise
            found["bare"].append(percentiles(baseline, {}, requests, bare))
            found["read"].append(percentiles(cartolog, headers, requests, read))
            found["edit"].append(percentiles(cartolog, headers, requests, edit))
    (b50, b99), (r50, r99), (e50, e99) = (medians(found[k]) for k in ("bare", "read", "edit"))
    base = "bare FastAPI GET (same process, uvicorn)"
    return [figure("scenario_read_p50", r50, "ms", base + " p50", b50, False),
            figure("scenario_read_p99", r99, "ms", base + " p99", b99, False, target_ratio=3.0),
            figure("scenario_edit_p50", e50, "ms", base + " p50", b50, False),
            figure("scenario_edit_p99", e99, "ms", base + " p99", b99, False)]


def city_scenario(container: Any, base: str, headers: dict[str, str]) -> tuple[str, str, int]:
    """Berlin-Center imported through the API, a scenario on it and a completed run,
    projected into the read model: (scenario id, run id, link count)."""
    files = city.upload_files()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        created = http.post("/v1/datasets", json={"format": "tntp", "name": "Berlin-Center",
                                                   **files})
    assert created.status_code == 201, created.text
    actor = Actor("bench")
    scenario = container.app.create_scenario(TENANT, UUID(created.json()["id"]), "city", actor)
    network = city.parsed(files)
    run = city.completed_run(container, TENANT, scenario, network, actor)
    projections_wiring.rebuild(container, ReadModel.name)
    # What autovacuum does within a minute of a bulk write; without statistics the planner
    # joins link_results to scenario_links by nested loop and a result tile takes minutes.
    with container.engine.begin() as connection:
        connection.execute(text("ANALYZE scenario_links, link_results, simulation_runs"))
    return str(scenario), str(run), len(network.links)


def getter(path: str, params: dict[str, str]) -> Callable[[int], Request]:
    """Every client sends the same GET."""
    return lambda index: lambda http, i: http.get(path, params=params)


def measure_tiles(container: Any, requests: int) -> list[dict[str, Any]]:
    """City-wide tiles from the API as configured (tiles kept in the process, 0504) and from
    a second server that keeps none (every request built by PostGIS), beside a bare GET."""
    token = container.dev_issuer.issue(TENANT, "editor")
    headers = {"Authorization": f"Bearer {token}", "Host": f"{TENANT}.cartolog.example"}
    settings = {"": ApiSettings(rate_per_second=1e6, rate_burst=1_000_000),
                "_uncached": ApiSettings(rate_per_second=1e6, rate_burst=1_000_000,
                                         tile_cache_mb=0)}
    x, y = city.tile_of(city.WEST, city.SOUTH, TILE_ZOOM)
    with contextlib.ExitStack() as servers:
        bases = {variant: servers.enter_context(serving(build_api(container, config)))
                 for variant, config in settings.items()}
        baseline = servers.enter_context(serving(bare_app()))
        scenario, run, links = city_scenario(container, bases[""], headers)
        paths = {"links": (f"/v1/tiles/links/{TILE_ZOOM}/{x}/{y}.mvt", {"scenario": scenario}),
                 "link_results": (f"/v1/tiles/link_results/{TILE_ZOOM}/{x}/{y}.mvt",
                                  {"run": run})}
        cases = [(layer + variant, bases[variant], path, params)
                 for variant in settings for layer, (path, params) in paths.items()]
        found: dict[str, list[tuple[float, float]]] = {"bare": [], **{c[0]: [] for c in cases}}
        for _ in range(RUNS):
            found["bare"].append(percentiles(baseline, {}, requests, getter("/bare", {}),
                                             TILE_CLIENTS))
            for name, base, path, params in cases:
                found[name].append(percentiles(base, headers, requests, getter(path, params),
                                               TILE_CLIENTS))
    b50, b99 = medians(found["bare"])
    base_name = f"bare FastAPI GET at {TILE_CLIENTS} clients"
    figures = []
    for name, *_ in cases:
        p50, p99 = medians(found[name])
        figures += [figure(f"city_tile_{name}_p50", p50, "ms", base_name + " p50", b50, False,
                           target_ms=300, links=links, tile=f"{TILE_ZOOM}/{x}/{y}"),
                    figure(f"city_tile_{name}_p99", p99, "ms", base_name + " p99", b99, False)]
    return figures


if __name__ == "__main__":
    main()
