"""Shared fixtures: the TNTP networks in ``tests/data/networks`` (see its SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation_worker.model import TntpCase, load_tntp_folder

NETWORKS = Path(__file__).resolve().parents[2] / "data" / "networks"


def network_folder(name: str) -> Path:
    """The folder of a test TNTP network; fails (never skips) when the data is missing."""
    folder = NETWORKS / name
    if not folder.is_dir():
        pytest.fail(f"test data missing: {folder} (tests/data/networks is part of the repository)")
    return folder


@pytest.fixture(scope="session")
def sioux_falls() -> TntpCase:
    return load_tntp_folder(network_folder("SiouxFalls"))


@pytest.fixture(scope="session")
def winnipeg() -> TntpCase:
    return load_tntp_folder(network_folder("Winnipeg"))
