"""The Berlin-Center city (865 zones, 28,376 links) for API benches: its TNTP files as an upload
with WGS84 coordinates, and a completed run written through the normal completion path.

The published node file is in a local planar frame (X 0..43.5, Y 0..31.9, kilometre-like), which
the API refuses as lon/lat; `upload_files` maps it linearly into a box over Berlin
(13.20..13.84 E, 52.15..52.44 N), so the whole city sits inside one zoom-8 tile.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import uuid
from pathlib import Path
from typing import Any

from api.tntp_import import parse_tntp
from domain.simulation import SimulationRun
from domain.values import Actor, Network

FOLDER = Path(__file__).resolve().parent / "data" / "BerlinCenter"
WEST, SOUTH = 13.20, 52.15
DEGREES_PER_UNIT_LON, DEGREES_PER_UNIT_LAT = 1 / 68.0, 1 / 111.2
RESULT_INDICATORS = ("vehicle_hours", "vehicle_km", "total_trips", "relative_gap")


def _read(kind: str) -> str:
    return gzip.decompress((FOLDER / f"BerlinCenter_{kind}.tntp.gz").read_bytes()).decode()


def _to_degrees(node_text: str) -> str:
    """The node file with X, Y mapped to lon, lat (header and comments kept)."""
    out = []
    for line in node_text.splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[0].isdigit():
            lon = WEST + float(cells[1]) * DEGREES_PER_UNIT_LON
            lat = SOUTH + float(cells[2]) * DEGREES_PER_UNIT_LAT
            line = f"{cells[0]}\t{lon:.7f}\t{lat:.7f}\t;"
        out.append(line)
    return "\n".join(out) + "\n"


def upload_files() -> dict[str, str]:
    """The `net`, `node` and `trips` fields of a TNTP `POST /v1/datasets` body."""
    return {"net": _read("net"), "node": _to_degrees(_read("node")), "trips": _read("trips")}


def parsed(files: dict[str, str]) -> Network:
    """The network the API builds from `files` (same parser)."""
    network, problems = parse_tntp(files["net"], files["trips"], files["node"], 1_000_000)
    if network is None:
        raise ValueError(problems)
    return network


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a WGS84 point."""
    n = 2**z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def completed_run(container: Any, tenant: str, scenario: uuid.UUID, network: Network,
                  by: Actor) -> uuid.UUID:
    """A run of the scenario completed with a result document of plausible random figures.

    The run goes through the ordinary path (request, start, result blob, RunCompleted), so
    the projector writes its link and zone results like any other; only the model is skipped.
    """
    rng = random.Random(12)
    version = container.app.get_scenario(tenant, scenario).version
    run = SimulationRun.request(uuid.uuid4(), tenant, scenario, version, "builtin",
                                {"gap": 1e-4}, by)
    run.start(1, "bench", by)
    document = {
        "links": [{"id": k.id, "flow": rng.uniform(0, 3000), "volume_capacity":
                   rng.uniform(0, 1.3), "time": rng.uniform(0.1, 5)} for k in network.links],
        "zones": [{"id": z.id, "trips_from": rng.uniform(0, 3000), "jobs_within_threshold":
                   rng.uniform(0, 1e5), "logsum_accessibility": rng.uniform(0, 12)}
                  for z in network.zones]}
    sha = container.blobs.put(tenant, json.dumps(document).encode())
    run.complete(1, sha, {n: rng.uniform(1, 1e5) for n in RESULT_INDICATORS}, 1.0, by)
    container.app.save(run)
    return run.id
