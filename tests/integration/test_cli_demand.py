"""`cartolog scenario demand import|export` against the real database."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from infra.cli_support import OPERATOR
from infra.settings import Settings
from infra.wiring import Container
from tests.integration.test_cli import cartolog
from tests.unit.test_domain import tiny_network


def scenario(container: Container) -> uuid.UUID:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    return container.app.create_scenario("acme", dataset, "base", OPERATOR)


def import_text(settings: Settings, tmp_path: Path, scenario_id: uuid.UUID, text: str,
                *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`cartolog scenario demand import` of a CSV holding ``text``."""
    source = tmp_path / "demand.csv"
    source.write_text(text)
    return cartolog("scenario", "demand", "import", str(scenario_id), str(source),
                    "--tenant", "acme", *options, database_url=settings.database_url, **env)


def test_import_then_export_round_trips_and_a_bad_file_fails_in_one_line(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    scenario_id = scenario(container)
    source = tmp_path / "demand.csv"
    source.write_text("origin,destination,trips,class\n1,2,12.5,car\n2,1,3.0,truck\n")
    url = settings.database_url
    done = cartolog("scenario", "demand", "import", str(scenario_id), str(source),
                    "--tenant", "acme", database_url=url)
    assert done.returncode == 0, done.stderr
    assert '"version": 2' in done.stdout
    exported = tmp_path / "out.omx"
    assert cartolog("scenario", "demand", "export", str(scenario_id), str(exported),
                    "--tenant", "acme", database_url=url).returncode == 0
    again = cartolog("scenario", "demand", "import", str(scenario_id), str(exported),
                     "--tenant", "acme", database_url=url)
    assert again.returncode == 0, again.stderr
    now = container.app.get_scenario("acme", scenario_id).demand_matrix
    before = container.app.get_scenario("acme", scenario_id, 2).demand_matrix
    assert now is not None and before is not None
    assert now["sha256"] == before["sha256"]
    assert now["classes"] == {"car": 12.5, "truck": 3.0}
    bad = tmp_path / "bad.csv"
    bad.write_text("origin,destination,trips\n1,5,1\n")
    failed = cartolog("scenario", "demand", "import", str(scenario_id), str(bad),
                      "--tenant", "acme", database_url=url)
    assert failed.returncode == 1
    assert failed.stderr.strip() == ("cartolog: error: the demand matrix was rejected; "
                                     "nothing was stored: unknown zone 5")
    assert container.app.get_scenario("acme", scenario_id).version == 3


def test_a_file_that_used_to_crash_the_parser_fails_in_one_line(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    scenario_id = scenario(container)
    failed = import_text(settings, tmp_path, scenario_id,
                         "origin,destination,trips\n99999999999999999999,2,3\n")
    assert failed.returncode == 1
    assert failed.stderr.strip() == ("cartolog: error: the demand matrix was rejected; "
                                     "nothing was stored: line 2: a zone id must be between 1 "
                                     "and 2147483647")
    assert container.app.get_scenario("acme", scenario_id).version == 1


def test_if_version_zero_is_a_version_not_the_default(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    scenario_id = scenario(container)
    failed = import_text(settings, tmp_path, scenario_id, "origin,destination,trips\n1,2,12.5\n",
                         "--if-version", "0")
    assert failed.returncode == 1
    assert failed.stderr.strip() == (f"cartolog: error: {scenario_id} is at version 1, not at "
                                     "the expected version 0")
    assert container.app.get_scenario("acme", scenario_id).version == 1


def test_importing_a_class_name_hdf5_reserves_fails_in_one_line(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    scenario_id = scenario(container)
    failed = import_text(settings, tmp_path, scenario_id,
                         "origin,destination,trips,class\n1,2,12.5,_v_car\n")
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert "a class name '_v_car' must not start with '_v_'" in failed.stderr
    assert container.app.get_scenario("acme", scenario_id).version == 1


def test_the_cell_cap_follows_the_blob_limit(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    scenario_id = scenario(container)
    # room for the 1 MiB header allowance and 7 cells: the 2 x 2 x 2 matrix needs 8
    failed = import_text(settings, tmp_path, scenario_id,
                         "origin,destination,trips,class\n1,2,12.5,car\n1,2,3,truck\n",
                         CARTOLOG_BLOB_MAX_BYTES=str(1024 * 1024 + 7 * 8))
    assert failed.returncode == 1
    assert "= 8 cells, at most 7 are allowed" in failed.stderr
    assert failed.stderr.count("\n") == 1
    assert container.app.get_scenario("acme", scenario_id).version == 1


def test_a_scenario_export_carries_the_uploaded_matrix_not_the_datasets(
        container: Container, settings: Settings, tmp_path: Path) -> None:
    """The exported network's demand is what the scenario's runs assign: the uploaded
    classes summed; an earlier version exports the dataset's own matrix."""
    from adapters.gis.gmns import gmns_files, read_gmns

    scenario_id = scenario(container)
    url = settings.database_url
    assert import_text(settings, tmp_path, scenario_id,
                       "origin,destination,trips,class\n1,2,12.5,car\n1,2,1.5,truck\n"
                       "2,1,3.0,truck\n").returncode == 0
    exported = cartolog("scenario", "export", str(scenario_id), "--tenant", "acme",
                        "--format", "gmns", "-o", str(tmp_path / "now.zip"), database_url=url)
    assert exported.returncode == 0, exported.stderr
    network = read_gmns(gmns_files(tmp_path / "now.zip"))
    assert sorted(network.od_matrix) == [(1, 2, 14.0), (2, 1, 3.0)]
    before = cartolog("scenario", "export", str(scenario_id), "--tenant", "acme", "--format",
                      "gmns", "--version", "1", "-o", str(tmp_path / "v1.zip"),
                      database_url=url)
    assert before.returncode == 0, before.stderr
    assert read_gmns(gmns_files(tmp_path / "v1.zip")).od_matrix == tiny_network().od_matrix
