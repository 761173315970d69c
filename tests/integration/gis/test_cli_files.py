"""`cartolog dataset import` and `cartolog scenario export` against the real database."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from adapters.gis.gmns import gmns_files, read_gmns
from infra.settings import Settings
from infra.wiring import build
from tests.integration.conftest import OPERATOR
from tests.integration.gis import files
from tests.integration.test_cli import cartolog
from tests.unit.test_domain import tiny_network


def test_import_then_export_round_trips(settings: Settings, tmp_path: Path) -> None:
    url = settings.database_url
    assert cartolog("tenant", "create", "city", database_url=url).returncode == 0
    imported = cartolog("dataset", "import", str(files.gmns_zip(tmp_path / "net.zip")),
                        "--tenant", "city", "--name", "Tiny", database_url=url)
    assert imported.returncode == 0, imported.stderr
    dataset = UUID(imported.stdout.strip())
    services = build(settings)
    try:
        scenario = services.app.create_scenario("city", dataset, "base", OPERATOR)
    finally:
        services.close()
    exported = cartolog("scenario", "export", str(scenario), "--tenant", "city", "--format",
                        "gmns", "-o", str(tmp_path), database_url=url)
    assert exported.returncode == 0, exported.stderr
    path = Path(exported.stdout.strip())
    assert path.parent == tmp_path and path.name == "base-gmns.zip"
    assert read_gmns(gmns_files(path)) == tiny_network()


def test_a_bad_file_fails_in_one_line(settings: Settings, tmp_path: Path) -> None:
    url = settings.database_url
    cartolog("tenant", "create", "city", database_url=url)
    bad = files.truncated(files.gmns_zip(tmp_path / "whole.zip"), tmp_path / "net.zip")
    done = cartolog("dataset", "import", str(bad), "--tenant", "city", database_url=url)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("cartolog: error: the GMNS upload cannot be read: file: "
                                  "not a readable zip")


@pytest.mark.parametrize(("option", "reason"), [
    (("--hexagon-km", "0"), "hexagon_km: hexagon_km must be over 0.05 and at most 50 km, not 0"),
    (("--hexagon-km", "nan"),
     "hexagon_km: hexagon_km must be over 0.05 and at most 50 km, not nan"),
    (("--hexagon-km", "51"),
     "hexagon_km: hexagon_km must be over 0.05 and at most 50 km, not 51"),
    (("--first-thru-node", "0"),
     "first_thru_node: first_thru_node must be between 1 and 2147483647"),
    (("--mapping", "[" * 5000 + "]" * 5000),
     'mapping: nested too deeply; expected {"target": "source field", ...}'),
    (("--mapping", '{"capcity": "CAP"}'), "(either may be prefixed 'links.' or 'zones.')"),
])
def test_options_the_api_refuses_fail_in_one_line(
        settings: Settings, tmp_path: Path, option: tuple[str, str], reason: str) -> None:
    url = settings.database_url
    cartolog("tenant", "create", "city", database_url=url)
    done = cartolog("dataset", "import", str(files.gmns_zip(tmp_path / "net.zip")),
                    "--tenant", "city", *option, database_url=url)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (1, "", 1), done.stderr
    assert done.stderr.rstrip("\n").endswith(reason)


def test_the_import_keeps_the_services_feature_cap(settings: Settings, tmp_path: Path) -> None:
    """CARTOLOG_API_MAX_FEATURES bounds an operator's import as it bounds an upload: a city
    too large for the default is imported by raising it, not by a second, hidden limit."""
    url = settings.database_url
    cartolog("tenant", "create", "city", database_url=url)
    path = str(files.gmns_zip(tmp_path / "net.zip"))
    capped = cartolog("dataset", "import", path, "--tenant", "city", database_url=url,
                      CARTOLOG_API_MAX_FEATURES="1")
    assert (capped.returncode, capped.stdout, capped.stderr.count("\n")) == (1, "", 1)
    assert "at most 1 " in capped.stderr, capped.stderr
    raised = cartolog("dataset", "import", path, "--tenant", "city", database_url=url,
                      CARTOLOG_API_MAX_FEATURES="1000")
    assert raised.returncode == 0, raised.stderr
