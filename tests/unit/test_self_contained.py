"""The repository stands on its own: nothing in it points outside it, and the data the
tests and benches read is inside it (`.ci/run` also runs the suite from a fresh clone)."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NETWORKS = REPO / "tests" / "data" / "networks"
# Built from parts so that this file does not match itself.
OUTSIDE = re.compile(("\\.\\./" + "shared" + "|/work/" + "(?:shared|main|wt)/").encode())
SKIPPED_DIRS = {".git", ".venv", "node_modules", "dist", ".cartolog", "__pycache__",
                ".mypy_cache", ".ruff_cache", ".pytest_cache", "out"}


def repository_files() -> list[Path]:
    """Files under version control (every file but ignored ones when git is unavailable)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True,
                                capture_output=True).stdout.decode().split("\0")
        return [REPO / name for name in listed if name and (REPO / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in REPO.rglob("*") if p.is_file()
                and not SKIPPED_DIRS & set(p.relative_to(REPO).parts)]


def references_outside(path: Path) -> list[int]:
    """Line numbers of `path` that name a folder beside the repository."""
    lines = path.read_bytes().splitlines()
    return [number for number, line in enumerate(lines, 1) if OUTSIDE.search(line)]


def test_no_file_points_beside_the_repository() -> None:
    files = repository_files()
    assert len(files) > 100, "the file listing found too little to be the repository"
    offenders = {str(p.relative_to(REPO)): lines for p in files
                 if (lines := references_outside(p))}
    assert not offenders, f"files referring to folders outside the repository: {offenders}"


def test_the_checker_finds_a_reference(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("ok = 1\nDATA = '..' '/' 'x'\nDATA = '../" + "shared/data'\n")
    assert references_outside(module) == [3]


def listed_networks() -> list[str]:
    """The network folders that tests/data/networks/SOURCE.md says are there."""
    source = (NETWORKS / "SOURCE.md").read_text()
    return re.findall(r"\b([A-Z][A-Za-z]+) \([A-Za-z-]+\)", source)


def test_source_note_lists_every_network_folder() -> None:
    folders = sorted(p.name for p in NETWORKS.iterdir() if p.is_dir())
    assert sorted(listed_networks()) == folders
    assert "SiouxFalls" in folders and "Winnipeg" in folders


@pytest.mark.parametrize("name", listed_networks())
def test_network_files_are_real_data(name: str) -> None:
    for kind in ("net", "trips"):
        path = NETWORKS / name / f"{name}_{kind}.tntp"
        packed = path.with_name(path.name + ".gz")
        text = (gzip.decompress(packed.read_bytes()).decode() if packed.exists()
                else path.read_text())
        assert "<END OF METADATA>" in text, f"{name}_{kind}.tntp is not a TNTP file"
        assert len(text.splitlines()) > 20
