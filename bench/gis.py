"""GIS files: GeoPackage export and GMNS import of a network (links, nodes, zones, OD matrix),
each beside a baseline doing only the unavoidable part (pyogrio writing the same layers from
ready arrays; csv reading the same rows without building anything).

The network is Berlin Mitte-Prenzlauer Berg-Friedrichshain-Center (tests/data/networks,
2 100+ links). `--quick` uses Sioux Falls. Each side runs RUNS times; figures are medians.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyogrio.raw import write

from adapters.gis.exports import export_scenario
from adapters.gis.gmns import gmns_files, read_gmns
from adapters.gis.tables import network_tables
from api.tntp_import import network_from_tntp_folder
from bench.common import figure, median_of, report
from domain.values import Network

NETWORKS = Path(__file__).resolve().parents[1] / "tests" / "data" / "networks"
RUNS = 5
Layer = tuple[str, str | None, Any, list[Any], list[str]]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def prepared_layers(network: Network) -> list[Layer]:
    """Every layer of the export as ready arrays: what the baseline writes."""
    layers = []
    for table in network_tables(network):
        shapes = (shapely.to_wkb(np.array(table.geometries, dtype=object))
                  if table.geometry_type else None)
        columns = [np.array(v, dtype=object if isinstance(v[0], str) else None)
                   for v in table.columns.values()]
        layers.append((table.name, table.geometry_type, shapes, columns, list(table.columns)))
    return layers


def raw_gpkg(layers: list[Layer], folder: Path) -> float:
    """Baseline: pyogrio writing the same layers from arrays built beforehand."""
    target = folder / f"raw-{time.perf_counter_ns()}.gpkg"
    start = time.perf_counter()
    for index, (name, kind, shapes, columns, fields) in enumerate(layers):
        write(str(target), shapes, columns, fields=fields, layer=name, driver="GPKG",
              geometry_type=kind, crs="EPSG:4326" if kind else None, append=index > 0)
    return time.perf_counter() - start


def measure(network: Network, folder: Path) -> list[dict[str, object]]:
    links = len(network.links)
    export = median_of(RUNS, lambda: timed(
        lambda: export_scenario(network, f"n{time.perf_counter_ns()}", "gpkg", folder)))
    layers = prepared_layers(network)
    baseline = median_of(RUNS, lambda: raw_gpkg(layers, folder))
    archive = export_scenario(network, "gmns", "gmns", folder).path
    imported = median_of(RUNS, lambda: timed(lambda: read_gmns(gmns_files(archive))))
    parsed = median_of(RUNS, lambda: timed(lambda: _csv_only(archive)))
    return [
        figure("gpkg_export", links / export, "links/s",
               "pyogrio writing the same layers from ready arrays", links / baseline),
        figure("gmns_import", links / imported, "links/s",
               "csv.reader over the same files, nothing built", links / parsed),
    ]


def _csv_only(archive: Path) -> int:
    rows = 0
    with zipfile.ZipFile(archive) as opened:
        for name in opened.namelist():
            rows += sum(1 for _ in csv.reader(io.StringIO(opened.read(name).decode())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Sioux Falls instead of Berlin")
    args = parser.parse_args()
    name = "SiouxFalls" if args.quick else "BerlinMPFC"
    network = network_from_tntp_folder(NETWORKS / name)
    with tempfile.TemporaryDirectory(prefix="cartolog-bench-gis-") as folder:
        figures = measure(network, Path(folder))
    report("gis", figures, network=name, links=len(network.links), runs=RUNS)


if __name__ == "__main__":
    main()
