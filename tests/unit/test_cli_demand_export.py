"""`cartolog scenario demand export` of a class stored before the name rule (decision 0707):
the application below the CLI is faked, so only the CLI's own handling is under test."""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import infra.cli_demand as cli_demand
from adapters.demand_matrix import read_csv
from infra.cli_support import CliError


def _stored(name: str) -> bytes:
    matrix = read_csv(b"origin,destination,trips,class\n1,2,12.5,car\n")
    return type(matrix)(matrix.zone_ids, {name: matrix.trips["car"]}).to_blob()


@pytest.fixture
def legacy(monkeypatch: pytest.MonkeyPatch) -> None:
    app = SimpleNamespace(demand_matrix_content=lambda *args: _stored("_v_car"))

    @contextlib.contextmanager
    def container() -> Iterator[Any]:
        yield SimpleNamespace(app=app)

    monkeypatch.setattr(cli_demand, "container", container)


def _args(file: Path) -> argparse.Namespace:
    return argparse.Namespace(tenant="acme", scenario_id=uuid.uuid4(), version=None,
                              file=file, format=None)


def test_a_stored_name_hdf5_reserves_exports_as_csv_but_not_as_omx(
        legacy: None, tmp_path: Path) -> None:
    target = tmp_path / "out.omx"
    with pytest.raises(CliError) as error:
        cli_demand.cmd_export(_args(target))
    assert str(error.value) == (
        "cannot write OMX: '_v_car' cannot be an OMX matrix name (PyTables reserves names "
        "starting with '_v_'); export to a .csv file (or --format csv) instead")
    assert not target.exists()
    as_csv = tmp_path / "out.csv"
    assert cli_demand.cmd_export(_args(as_csv)) == 0
    assert as_csv.read_text().splitlines()[1:] == ["1,2,12.5,_v_car"]
