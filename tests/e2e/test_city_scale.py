"""A city-sized network (more than 10,000 links) through the API: TNTP import, a run, its link
results and a tile that shows the whole city."""

from __future__ import annotations

import numpy as np

from infra.wiring import Container
from tests.e2e.test_api_flow import tile_of, wait_completed, whole_pipeline
from tests.integration.api.conftest import Api, api  # noqa: F401
from tests.integration.conftest import container  # noqa: F401

ROWS, COLS, ZONES = 50, 52, 200
WEST, SOUTH, STEP = 13.30, 52.52, 0.004


def city_tntp(seed: int = 3) -> dict[str, str]:
    """A grid city as TNTP text: two-way streets between ROWS x COLS intersections, every 8th
    street an arterial, ZONES zone nodes (ids 1..ZONES, not through nodes) each tied to an
    intersection by a pair of zero-time connectors, coordinates in degrees around Berlin."""
    rng = np.random.default_rng(seed)
    node = np.arange(ROWS * COLS).reshape(ROWS, COLS) + ZONES + 1
    rows: list[str] = []
    for r in range(ROWS):
        for c in range(COLS):
            for r2, c2, major in ((r, c + 1, r % 8 == 0), (r + 1, c, c % 8 == 0)):
                if r2 < ROWS and c2 < COLS:
                    cap, fft = (3000.0, 0.4) if major else (1200.0, 0.7)
                    for a, b in ((node[r, c], node[r2, c2]), (node[r2, c2], node[r, c])):
                        rows.append(f"\t{a}\t{b}\t{cap}\t0.4\t{fft}\t0.15\t4\t0\t0\t1\t;")
    spots = rng.choice(ROWS * COLS, size=ZONES, replace=False)
    for z, spot in enumerate(spots, start=1):
        at = int(node.flat[spot])
        rows += [f"\t{z}\t{at}\t99999\t0\t0\t0\t4\t0\t0\t0\t;",
                 f"\t{at}\t{z}\t99999\t0\t0\t0\t4\t0\t0\t0\t;"]
    n_nodes = ZONES + ROWS * COLS
    net = (f"<NUMBER OF ZONES> {ZONES}\n<NUMBER OF NODES> {n_nodes}\n"
           f"<FIRST THRU NODE> {ZONES + 1}\n<NUMBER OF LINKS> {len(rows)}\n<END OF METADATA>\n\n"
           "~\tinit\tterm\tcapacity\tlength\tfft\tb\tpower\tspeed\ttoll\ttype\t;\n"
           + "\n".join(rows) + "\n")
    lon = WEST + STEP * (np.arange(ROWS * COLS) % COLS)
    lat = SOUTH + STEP * 0.6 * (np.arange(ROWS * COLS) // COLS)
    coords = [(lon[s] + 0.0005, lat[s] + 0.0005) for s in spots] + list(zip(lon, lat, strict=True))
    node_text = "Node\tX\tY\t;\n" + "".join(
        f"{i}\t{x:.6f}\t{y:.6f}\t;\n" for i, (x, y) in enumerate(coords, start=1))
    demand = rng.gamma(0.5, 4.0, size=(ZONES, ZONES)) * (rng.random((ZONES, ZONES)) < 0.3)
    np.fill_diagonal(demand, 0.0)
    trips = [f"<NUMBER OF ZONES> {ZONES}\n<TOTAL OD FLOW> {demand.sum():.4f}\n"
             "<END OF METADATA>\n\n"]
    for o in range(ZONES):
        cells = "".join(f"{d + 1} : {demand[o, d]:.4f}; " for d in np.flatnonzero(demand[o]))
        trips.append(f"Origin {o + 1}\n{cells}\n\n")
    return {"net": net, "node": node_text, "trips": "".join(trips)}


def test_a_10k_link_city_imports_runs_and_tiles(api: Api, container: Container  # noqa: F811
                                                 ) -> None:
    files = city_tntp()
    n_links = files["net"].count(";") - 1
    assert n_links >= 10_000
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "grid city", **files})
        assert dataset.status_code == 201, dataset.text
        scenario = api.scenario(dataset=dataset.json()["id"])
        created = api.post(f"/v1/scenarios/{scenario}/simulations",
                           {"model": "builtin", "parameters": {"gap": 1e-4, "reuse": False}})
        assert created.status_code == 202, created.text
        run = wait_completed(api, created.json()["id"], timeout=900)
    assert run["indicators"]["converged"] == 1, run
    assert run["status_detail"].startswith("converged at gap ")
    page = api.get(f"/v1/simulations/{run['id']}/links", params={"limit": 500}).json()
    assert len(page["features"]) == 500
    assert sum(f["properties"]["flow"] > 0 for f in page["features"]) > 0
    # One zoom-8 tile holds the whole city: its south-west and north-east corners share it.
    x, y = tile_of(WEST, SOUTH, 8)
    assert (x, y) == tile_of(WEST + STEP * COLS, SOUTH + STEP * 0.6 * ROWS, 8)
    tile = api.get(f"/v1/tiles/link_results/8/{x}/{y}.mvt", params={"run": run["id"]})
    assert tile.status_code == 200, tile.text
    assert len(tile.content) > 50_000
