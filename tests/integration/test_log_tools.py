"""Operator log tools on the real database: show, stats, export/import with verification."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.backup import BackupError, StoreNotEmpty, export_log, import_log
from adapters.loginspect import show, state_of, stats
from domain.edits import CloseLink, SetZoneAttributes
from infra.settings import Settings
from infra.wiring import Container, build
from tests.conftest import REPO
from tests.integration.conftest import OPERATOR
from tests.unit.test_domain import tiny_network


def workload(container: Container) -> list[object]:
    dataset = container.app.import_dataset("acme", "tiny", tiny_network(), OPERATOR)
    scenario_id = container.app.create_scenario("acme", dataset, "base", OPERATOR)
    container.app.edit_scenario("acme", scenario_id, 1, [CloseLink("a")], OPERATOR)
    container.app.edit_scenario("acme", scenario_id, 2,
                                [SetZoneAttributes(1, population=7.0)], OPERATOR)
    return [dataset, scenario_id]


def dump(engine_url: str) -> list[tuple[object, ...]]:
    engine = create_engine(engine_url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, originator_id, originator_version, topic, state FROM cartolog_events "
            "ORDER BY id")).all()
        blobs = connection.execute(text(
            "SELECT tenant_id, sha256, content FROM blobs ORDER BY 1, 2")).all()
    engine.dispose()
    return [tuple(r) for r in rows] + [tuple(b) for b in blobs]


def test_show_at_a_past_version_equals_the_aggregate_then(container: Container) -> None:
    _, scenario_id = workload(container)
    then = container.app.get_scenario("acme", scenario_id, version=2)  # type: ignore[arg-type]
    shown = show(container.app, scenario_id, version=2)  # type: ignore[arg-type]
    assert shown["state"] == state_of(then)
    assert shown["state"]["closed_links"] == ["a"] and shown["state"]["zone_attributes"] == {}
    assert [e["type"] for e in shown["history"]] == ["Scenario.Created", "Scenario.LinkClosed"]
    now = show(container.app, scenario_id)  # type: ignore[arg-type]
    assert now["version"] == 3 and now["state"]["zone_attributes"] == {"1": {"population": 7.0}}


def test_stats_count_by_type_and_tenant(container: Container) -> None:
    workload(container)
    report = stats(container.engine)
    assert report["by_type"]["Scenario.LinkClosed"] >= 1
    assert report["by_tenant"]["acme"] >= 4
    assert report["store_head"] >= report["events"]


@pytest.mark.parametrize("name", ["backup.jsonl", "backup.jsonl.gz"])
def test_export_then_import_into_an_empty_store_keeps_everything(
    container: Container, fresh_database_url: str, tmp_path: Path, name: str,
) -> None:
    workload(container)
    path = tmp_path / name
    events, blobs = export_log(container.engine, path)
    assert events > 4 and blobs >= 1
    restored = build(Settings(database_url=fresh_database_url))
    try:
        assert import_log(restored.engine, path) == (events, blobs)
        assert dump(fresh_database_url) == dump(container.settings.database_url)
        # positions are kept and the sequence continues after them
        restored.app.register_tenant("after-restore", OPERATOR)
        with restored.engine.connect() as connection:
            newest = connection.execute(text("SELECT max(id) FROM cartolog_events")).scalar()
        assert newest == max(r[0] for r in dump(container.settings.database_url)
                             if isinstance(r[0], int)) + 1
        with pytest.raises(StoreNotEmpty):
            import_log(restored.engine, path)
    finally:
        restored.close()


def damaged_copies(path: Path, tmp_path: Path) -> dict[str, Path]:
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_bytes(raw[: len(raw) * 2 // 3])
    altered = tmp_path / "altered.jsonl"
    index = raw.index(b'"state_b64":"') + len(b'"state_b64":"') + 5
    flipped = bytes([raw[index] ^ 0x01])  # one byte, still base64 text
    altered.write_bytes(raw[:index] + (flipped if flipped.isalnum() else b"A") + raw[index + 1:])
    no_end = tmp_path / "no-end.jsonl"
    no_end.write_bytes(b"".join(raw.splitlines(keepends=True)[:-1]))
    return {"truncated": truncated, "altered": altered, "no_end": no_end}


def test_import_refuses_a_damaged_file_and_writes_nothing(
    container: Container, fresh_database_url: str, tmp_path: Path,
) -> None:
    workload(container)
    path = tmp_path / "backup.jsonl"
    export_log(container.engine, path)
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    for kind, damaged in damaged_copies(path, tmp_path).items():
        with pytest.raises(BackupError):
            import_log(create_engine(fresh_database_url), damaged)
        done = subprocess.run([sys.executable, "-m", "infra.cli", "log", "import", str(damaged)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 1, kind
        assert done.stderr.startswith("cartolog: error: import refused: "), done.stderr
        assert dump(fresh_database_url) == [], kind


def test_gzip_export_is_compressed_json_lines(container: Container, tmp_path: Path) -> None:
    workload(container)
    path = tmp_path / "backup.jsonl.gz"
    export_log(container.engine, path)
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert json.loads(lines[0])["format"] == "cartolog-log"
    assert json.loads(lines[-1])["kind"] == "end"
