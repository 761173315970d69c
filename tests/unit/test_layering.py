"""Dependencies point inward (docs/architecture.md, "Layering"): checked, not hoped for."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "projections", "adapters", "simulation_worker", "api", "infra", "bench")
OURS = {*LAYERS, "tests"}
CORE = {"domain", "projections", "adapters", "simulation_worker", "api", "infra"}
MAY_IMPORT = {
    "domain": set(),
    "projections": {"domain"},
    "adapters": {"domain", "projections"},
    "simulation_worker": {"domain", "adapters"},
    "api": {"domain", "projections", "adapters"},  # the API process never loads the model
    "infra": CORE,
    "bench": CORE,
}
MODEL = "simulation_worker.model"
DOMAIN_THIRD_PARTY = {"eventsourcing", "pydantic"}
NOT_CODE = {".venv", "node_modules", ".git", "web", ".cartolog", "__pycache__"}


def module_name(path: Path) -> str:
    """`simulation_worker/model/run.py` → `simulation_worker.model.run`."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved to absolute names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.add(".".join([*base, *([node.module] if node.module else [])]))
    return found


def imported_roots(path: Path) -> set[str]:
    """The top-level packages `path` imports."""
    return {name.split(".")[0] for name in imported_modules(path)}


def modules() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in LAYERS for path in sorted((REPO / layer).rglob("*.py"))]


def python_roots() -> set[str]:
    """Top-level folders of the repository that hold Python code."""
    return {path.relative_to(REPO).parts[0] for path in REPO.rglob("*.py")
            if not NOT_CODE & set(path.relative_to(REPO).parts)}


def test_every_python_folder_is_checked() -> None:
    # A new top-level package would otherwise import anything, unchecked.
    assert python_roots() == OURS


@pytest.mark.parametrize("layer", LAYERS)
def test_the_checker_sees_each_layers_imports(layer: str) -> None:
    seen = set().union(*(imported_roots(path) for _, path in modules() if _ == layer))
    assert seen & OURS, f"no import of ours found in {layer}/"
    assert "__future__" in seen


@pytest.mark.parametrize(("layer", "path"), modules(), ids=lambda v: str(v))
def test_imports_point_inward(layer: str, path: Path) -> None:
    ours = imported_roots(path) & OURS - {layer}
    outward = ours - MAY_IMPORT[layer]
    assert not outward, f"{path.relative_to(REPO)} imports {sorted(outward)}"


@pytest.mark.parametrize("path", sorted((REPO / "simulation_worker" / "model").rglob("*.py")),
                         ids=str)
def test_model_package_imports_nothing_of_ours(path: Path) -> None:
    foreign = {name for name in imported_modules(path) if name.split(".")[0] in OURS
               and name != MODEL and not name.startswith(MODEL + ".")}
    assert not foreign, f"{path.relative_to(REPO)} imports {sorted(foreign)}"


@pytest.mark.parametrize("path", sorted((REPO / "domain").rglob("*.py")), ids=str)
def test_domain_imports_only_stdlib_eventsourcing_pydantic(path: Path) -> None:
    foreign = {root for root in imported_roots(path) - {"domain", "__future__"}
               if root not in sys.stdlib_module_names and root not in DOMAIN_THIRD_PARTY}
    assert not foreign, f"{path.relative_to(REPO)} imports {sorted(foreign)}"


def test_the_checker_catches_an_outward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    model = tmp_path / "simulation_worker" / "model"
    model.mkdir(parents=True)
    module = model / "bad.py"
    module.write_text("from adapters.tables import metadata\nimport sqlalchemy\n"
                      "from .. import external\nfrom . import costs\nfrom .graph import G\n")
    assert imported_modules(module) == {
        "adapters.tables", "sqlalchemy", "simulation_worker", "simulation_worker.model",
        "simulation_worker.model.graph"}
    assert imported_roots(module) == {"adapters", "sqlalchemy", "simulation_worker"}
