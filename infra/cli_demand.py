"""`cartolog scenario demand import|export`: a scenario's demand matrix as OMX or CSV."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

from adapters import demand_matrix
from infra.cli_support import OPERATOR, CliError, Commands, command, container, group

FORMATS = ("omx", "csv")


def register(commands: Commands) -> None:
    """Add `cartolog scenario demand ...`."""
    scenario = group(commands, "scenario", "scenarios")
    demand = group(scenario, "demand", "a scenario's demand matrix (OMX or CSV)")
    command(demand, "import", cmd_import,
            "make a matrix file the scenario's demand (a new scenario version)", _import_options)
    command(demand, "export", cmd_export, "write the scenario's demand matrix to a file",
            _export_options)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario_id", type=uuid.UUID, help="the scenario")
    parser.add_argument("file", type=Path, help="the matrix file (.omx or .csv)")
    parser.add_argument("--tenant", required=True, help="the scenario's tenant")
    parser.add_argument("--format", choices=FORMATS,
                        help="file format (default: from the file's extension)")


def _import_options(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--if-version", type=int, metavar="N",
                        help="refuse unless the scenario is at version N (default: current)")


def _export_options(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--version", type=int, help="the scenario version (default: current)")


def file_format(path: Path, chosen: str | None) -> str:
    """The format named by --format, else by the file's extension."""
    found = chosen or path.suffix.lower().lstrip(".")
    if found not in FORMATS:
        raise CliError(f"cannot tell the format of {path}: use --format omx or --format csv")
    return found


def cmd_import(args: argparse.Namespace) -> int:
    """`cartolog scenario demand import SCENARIO FILE --tenant T`."""
    try:
        content = args.file.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {args.file}: {error.strerror}") from None
    chosen_format = file_format(args.file, args.format)
    with container() as services:
        app = services.app
        max_zones = app.zone_count(args.tenant, args.scenario_id)
        upload = demand_matrix.upload(content, chosen_format, max_zones,
                                      demand_matrix.cells_within(services.settings.blob_max_bytes))
        expected = (app.get_scenario(args.tenant, args.scenario_id).version
                    if args.if_version is None else args.if_version)
        version = app.set_demand_matrix(args.tenant, args.scenario_id, expected, upload,
                                        OPERATOR)
        matrix = app.get_scenario(args.tenant, args.scenario_id, version).demand_matrix
    print(json.dumps({"scenario_id": str(args.scenario_id), "version": version, **(matrix or {})}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`cartolog scenario demand export SCENARIO FILE --tenant T`."""
    with container() as services:
        content = services.app.demand_matrix_content(args.tenant, args.scenario_id, args.version)
    matrix = demand_matrix.DemandMatrix.from_blob(content)
    if file_format(args.file, args.format) == "omx":
        try:
            written = demand_matrix.write_omx(matrix)
        except demand_matrix.OmxNameError as error:
            raise CliError(f"cannot write OMX: {error}; export to a .csv file (or "
                           "--format csv) instead") from None
        args.file.write_bytes(written)
    else:
        args.file.write_text("".join(demand_matrix.write_csv(matrix)))
    return 0
