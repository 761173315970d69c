"""What one tenant's big TNTP import costs another tenant's requests (decision 0710).

Tenant `big` imports a TNTP city through ``POST /v1/datasets`` (a grid of ``--zones`` zones,
default 500, and a trips file with a trip on about 70 % of its OD pairs: some 3 MB of JSON).
Meanwhile tenant `other` reads ``GET /v1/datasets`` in a loop, one request at a time. The
figures are the other tenant's p50 and p99 latency during the import and the import's own
time, each the median of ``--runs`` runs (default 3). A small import first starts the
readers' forkserver, which an API process does once (about a second and a half).

Cartolog reads the TNTP files in a child process (api/routes/datasets.py, adapters.isolated);
the baseline is the same server with the files read in the API process, as before 0710
(``run_isolated`` replaced by a plain call). Both run in this process on loopback (uvicorn in
a thread), alternating, against the same database. The bench also reports the other tenant's
latency with no import running.

    .venv/bin/python -m bench.upload_isolation [--zones N] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from api.routes import datasets  # noqa: E402
from bench.api import serving  # noqa: E402
from bench.common import bench_database, figure, report  # noqa: E402
from domain.values import Actor  # noqa: E402
from infra.http import build_api  # noqa: E402
from infra.settings import ApiSettings, Settings  # noqa: E402
from infra.wiring import build  # noqa: E402

MAX_READS = 20_000  # the other tenant's requests per import, at most


def tntp_city(zones: int, seed: int = 11) -> dict[str, str]:
    """A square grid whose first `zones` nodes are zones, with its trips."""
    side = int(np.ceil(np.sqrt(zones)))
    nodes = side * side
    links = []
    for node in range(1, nodes + 1):
        row, column = divmod(node - 1, side)
        for other in ((node + 1) if column + 1 < side else None,
                      (node + side) if row + 1 < side else None):
            if other is not None:
                links += [(node, other), (other, node)]
    net = [f"<NUMBER OF ZONES> {zones}\n<NUMBER OF NODES> {nodes}\n<FIRST THRU NODE> 1\n"
           f"<NUMBER OF LINKS> {len(links)}\n<END OF METADATA>\n\n"
           "~ init_node term_node capacity length free_flow_time b power speed toll type ;\n"]
    net += [f"\t{a}\t{b}\t1000\t1\t1\t0.15\t4\t0\t0\t1\t;\n" for a, b in links]
    rng = np.random.default_rng(seed)
    trips = [f"<NUMBER OF ZONES> {zones}\n<END OF METADATA>\n\n"]
    for origin in range(1, zones + 1):
        trips.append(f"\nOrigin \t{origin}\n")
        row = np.round(rng.gamma(1.0, 20.0, zones), 2) * (rng.random(zones) < 0.7)
        used = np.flatnonzero(row)
        for start in range(0, len(used), 5):
            trips.append("".join(f"{d + 1:6d} :{row[d]:8.2f}; " for d in used[start:start + 5])
                         + "\n")
    return {"format": "tntp", "name": "big", "net": "".join(net), "trips": "".join(trips)}


@contextlib.contextmanager
def in_process_reads() -> Iterator[None]:
    """The baseline: TNTP files read in the API process, as before decision 0710."""
    isolated = datasets.run_isolated

    def inline(target: Callable[..., Any], args: tuple[Any, ...], *_: Any, **__: Any) -> Any:
        return target(*args)

    datasets.run_isolated = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        datasets.run_isolated = isolated


def one_run(base: str, big: dict[str, str], other: dict[str, str], body: dict[str, str]
            ) -> tuple[float, float, float]:
    """(p50 ms, p99 ms of the other tenant's reads during the import, import s)."""
    done = threading.Event()
    took: list[float] = []

    def upload() -> None:
        with httpx.Client(base_url=base, timeout=600) as http:
            started = time.perf_counter()
            response = http.post("/v1/datasets", json=body, headers=big)
            took.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
        done.set()

    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as http:
        thread = threading.Thread(target=upload)
        thread.start()
        while not done.is_set() and len(latencies) < MAX_READS:
            started = time.perf_counter()
            assert http.get("/v1/datasets", headers=other).status_code == 200
            latencies.append(time.perf_counter() - started)
        thread.join()
    return _ms(latencies, 50), _ms(latencies, 99), took[0]


def idle(base: str, other: dict[str, str], requests: int = 200) -> tuple[float, float]:
    latencies = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(requests):
            started = time.perf_counter()
            assert http.get("/v1/datasets", headers=other).status_code == 200
            latencies.append(time.perf_counter() - started)
    return _ms(latencies, 50), _ms(latencies, 99)


def _ms(values: list[float], percentile: int) -> float:
    return float(np.percentile(values, percentile)) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zones", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    body = tntp_city(args.zones)
    size_mb = sum(len(v) for v in body.values()) / 1e6
    with bench_database("cartolog_bench_upload") as url:
        container = build(Settings(database_url=url))
        for tenant in ("big", "other"):
            container.app.register_tenant(tenant, Actor("bench"))
        headers = {t: {"Authorization": f"Bearer {container.dev_issuer.issue(t, 'editor')}",
                       "Host": f"{t}.cartolog.example"} for t in ("big", "other")}
        api = build_api(container, ApiSettings(rate_per_second=1e6, rate_burst=1_000_000))
        sides: dict[str, list[tuple[float, float, float]]] = {"isolated": [], "inline": []}
        with serving(api) as base:
            quiet = idle(base, headers["other"])
            with httpx.Client(base_url=base, timeout=600) as http:  # start the forkserver
                small = {**tntp_city(4), "name": "warm-up"}
                assert http.post("/v1/datasets", json=small,
                                 headers=headers["big"]).status_code == 201
            for run in range(args.runs):
                for side in ("isolated", "inline") if run % 2 == 0 else ("inline", "isolated"):
                    with in_process_reads() if side == "inline" else contextlib.nullcontext():
                        sides[side].append(one_run(base, headers["big"], headers["other"],
                                                   body))
        container.close()

    def median(side: str, index: int) -> float:
        return statistics.median(run[index] for run in sides[side])

    baseline = "TNTP read in the API process (before 0710)"
    report("upload_isolation", [
        figure("other_tenant_p50_during_import", median("isolated", 0), "ms", baseline,
               median("inline", 0), higher_is_better=False),
        figure("other_tenant_p99_during_import", median("isolated", 1), "ms", baseline,
               median("inline", 1), higher_is_better=False),
        figure("import_time", median("isolated", 2), "s", baseline, median("inline", 2),
               higher_is_better=False),
    ], zones=args.zones, body_mb=round(size_mb, 1), runs=args.runs,
        other_tenant_idle_p50_ms=round(quiet[0], 3), other_tenant_idle_p99_ms=round(quiet[1], 3))


if __name__ == "__main__":
    main()
