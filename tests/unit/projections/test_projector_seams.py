"""The projector package's seams: small modules, no reaching into another's privates, and
an API that reaches read-your-writes without loading the projector."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from infra.projections_wiring import resume_offsets

REPO = Path(__file__).resolve().parents[3]
PACKAGE = sorted((REPO / "adapters" / "projector").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", PACKAGE, ids=lambda p: p.name)
def test_each_module_is_small_and_uses_only_public_names_of_the_others(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= 600
    private_use = re.findall(r"\b(?:runner|replay|projector|job)\._[a-z]\w*", source)
    assert private_use == []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adapters."):
            assert not [a.name for a in node.names if a.name.startswith("_")]


@pytest.mark.parametrize("path", sorted((REPO / "api").rglob("*.py")), ids=str)
def test_the_api_does_not_import_the_projector(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m.startswith("adapters.projector")}


def test_read_your_writes_needs_no_kafka() -> None:
    modules = imported_modules(REPO / "adapters" / "read_your_writes.py")
    assert not {m for m in modules if m.startswith(("kafka", "adapters"))}


def test_a_store_rebuild_resumes_where_the_live_tracking_was() -> None:
    live = {0: 40, 1: 7, 3: 90}
    beginnings = {0: 0, 1: 5, 2: 0, 3: 0}
    ends = {0: 42, 1: 7, 2: 3, 3: 12}
    assert resume_offsets(live, beginnings, ends) == {
        0: 40,  # tracked: the records from 40 on may be newer than the store head
        1: 7,   # at the end
        2: 0,   # never tracked: from the start
        3: 0,   # beyond the end (the broker lost its log): from the start
    }


def test_a_tracked_offset_before_the_retained_start_goes_to_the_start() -> None:
    assert resume_offsets({0: 3}, {0: 10}, {0: 20}) == {0: 10}
