"""Dependencies point inward (ARCHITECTURE.md "Where things live"): checked, not hoped for."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "projections", "adapters", "simulation_worker", "api", "infra")
MAY_IMPORT = {
    "domain": set(),
    "projections": {"domain"},
    "adapters": {"domain", "projections"},
    "simulation_worker": {"domain", "adapters"},
    "api": {"domain", "projections", "adapters"},  # the API process never loads the model
    "infra": set(LAYERS),
}
DOMAIN_THIRD_PARTY = {"eventsourcing", "pydantic"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def modules() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in LAYERS for path in sorted((REPO / layer).rglob("*.py"))]


def test_every_layer_has_modules() -> None:
    assert {layer for layer, _ in modules()} >= {"domain", "adapters", "api", "infra"}


@pytest.mark.parametrize(("layer", "path"), modules(), ids=lambda v: str(v))
def test_imports_point_inward(layer: str, path: Path) -> None:
    ours = imported_roots(path) & set(LAYERS) - {layer}
    outward = ours - MAY_IMPORT[layer]
    assert not outward, f"{path.relative_to(REPO)} imports {sorted(outward)}"


@pytest.mark.parametrize("path", sorted((REPO / "domain").rglob("*.py")), ids=str)
def test_domain_imports_only_stdlib_eventsourcing_pydantic(path: Path) -> None:
    foreign = {root for root in imported_roots(path) - {"domain", "__future__"}
               if root not in sys.stdlib_module_names and root not in DOMAIN_THIRD_PARTY}
    assert not foreign, f"{path.relative_to(REPO)} imports {sorted(foreign)}"


def test_the_checker_catches_an_outward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from adapters.tables import metadata\nimport sqlalchemy\n")
    assert imported_roots(module) == {"adapters", "sqlalchemy"}
