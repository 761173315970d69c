"""`cartolog dataset import`, `cartolog scenario export`, `cartolog simulation export`: the
GIS files of the API, from the command line (as the operator, for one --tenant)."""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import text

from adapters.gis.exports import (
    RUN_FORMATS,
    SCENARIO_FORMATS,
    ExportFile,
    export_run,
    export_scenario,
    scenario_network,
)
from adapters.gis.problems import ImportRejected
from api.imports.files import (
    FORMATS,
    HEXAGON_KM_ABOVE,
    HEXAGON_KM_MAX,
    ImportOptions,
    parse_mapping,
    read_network,
)
from domain.simulation import COMPLETED
from infra.cli_support import (
    OPERATOR,
    CliError,
    Commands,
    command,
    container,
    group,
    process_settings,
)
from infra.wiring import Container


def register(commands: Commands) -> None:
    """Add the dataset, scenario and simulation file commands."""
    dataset = group(commands, "dataset", "datasets")
    command(dataset, "import", cmd_import,
            "import a GMNS, GeoPackage, Shapefile, OSM or TNTP network", _import_options)
    scenario = group(commands, "scenario", "scenarios")
    command(scenario, "export", cmd_scenario_export, "write a scenario's network to a file",
            lambda p: _export_options(p, "scenario", SCENARIO_FORMATS))
    simulation = group(commands, "simulation", "simulation runs")
    command(simulation, "export", cmd_simulation_export,
            "write a completed run's results to a file",
            lambda p: _export_options(p, "run", RUN_FORMATS))


def _import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help=(
        "zip, folder, .gpkg, .shp or .osm.pbf; TNTP: a folder or zip holding *_net.tntp, "
        "*_trips.tntp and an optional *_node.tntp (or the *_net.tntp itself)"))
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--name", help="dataset name (default: the file name)")
    parser.add_argument("--format", choices=FORMATS, help="default: from the file name")
    parser.add_argument("--mapping", help='field mapping as JSON, e.g. {"capacity": "CAP"}')
    parser.add_argument("--links-layer", default="links")
    parser.add_argument("--zones-layer", default="zones")
    parser.add_argument("--first-thru-node", type=int,
                        help="default: GMNS config.csv's, else 1; not for OSM or TNTP")
    parser.add_argument("--crs", help=(
        "the coordinates' CRS (e.g. EPSG:27700) when the file names none: a TNTP node file, "
        "GMNS without config.csv's crs, a Shapefile without .prj; reprojected to WGS84"))
    parser.add_argument("--hexagon-km", type=float, default=1.0,
                        help=f"OSM: width of the zone hexagons (default 1 km; over "
                             f"{HEXAGON_KM_ABOVE:g}, at most {HEXAGON_KM_MAX:g})")
    parser.add_argument("--zones", type=Path,
                        help="OSM: zone polygons (GeoPackage or Shapefile zip) instead")


def _export_options(parser: argparse.ArgumentParser, subject: str,
                    formats: Iterable[str]) -> None:
    parser.add_argument("id", type=UUID, help=f"the {subject} id")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--format", choices=tuple(formats), default="gpkg")
    parser.add_argument("--output", "-o", type=Path, default=Path("."),
                        help="a folder (file named after the subject) or a file path")
    if subject == "scenario":
        parser.add_argument("--version", type=int, help="default: the current version")


def cmd_import(args: argparse.Namespace) -> int:
    """Import one file as a new dataset and print its id."""
    if not args.file.exists():
        raise CliError(f"{args.file}: no such file or folder")
    try:
        options = ImportOptions(args.format, parse_mapping(args.mapping), args.links_layer,
                                args.zones_layer, args.first_thru_node, args.hexagon_km,
                                max_features=process_settings().api.max_features,
                                zones_file=args.zones, crs=args.crs)
        fmt, network = read_network(args.file, options)
    except ImportRejected as rejected:
        raise CliError(f"{rejected}: " + "; ".join(rejected.problems[:20])) from None
    with container() as services:
        name = args.name or args.file.resolve().name
        dataset = services.app.import_dataset(args.tenant, name, network, OPERATOR,
                                              source_format=fmt)
    print(dataset)
    return 0


def cmd_scenario_export(args: argparse.Namespace) -> int:
    """Write the scenario's network and print the file's path."""
    _quiet_gdal()
    with container() as services, tempfile.TemporaryDirectory() as folder:
        name, network = scenario_network(services.app, args.tenant, args.id, args.version)
        _deliver(export_scenario(network, name, args.format, Path(folder)), args.output)
    return 0


def cmd_simulation_export(args: argparse.Namespace) -> int:
    """Write the run's results and print the file's path."""
    _quiet_gdal()
    with container() as services, tempfile.TemporaryDirectory() as folder:
        run = services.app.get_run(args.tenant, args.id)
        if run.status != COMPLETED:
            raise CliError(f"run {args.id} is {run.status}: only completed runs export")
        name, network = scenario_network(services.app, args.tenant, run.scenario_id,
                                         run.scenario_version)
        rows = _operator_rows(services, args.tenant)
        _deliver(export_run(network, rows, str(args.id), name, args.format, Path(folder)),
                 args.output)
    return 0


def _operator_rows(services: Container, tenant: str) -> Any:
    def rows(sql: str, **params: Any) -> list[Any]:
        with services.engine.connect() as connection:
            return list(connection.execute(text(sql), {"tenant": tenant, **params}).mappings())
    return rows


def _quiet_gdal() -> None:
    """pyogrio logs every layer it writes at INFO: noise on a command's output."""
    logging.getLogger("pyogrio").setLevel(logging.WARNING)


def _deliver(exported: ExportFile, output: Path) -> None:
    target = output / exported.filename if output.is_dir() else output
    shutil.move(str(exported.path), target)
    print(target)
