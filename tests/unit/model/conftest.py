"""Shared fixtures: the TNTP networks in the ``shared`` folder beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation_worker.model import TntpCase, load_tntp_folder

NETWORKS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "networks"


def network_folder(name: str) -> Path:
    """The folder of a shared TNTP network; fails (never skips) when the data is missing."""
    folder = NETWORKS / name
    if not folder.is_dir():
        pytest.fail(f"test data missing: {folder} (the shared/ folder must sit beside the repo)")
    return folder


@pytest.fixture(scope="session")
def sioux_falls() -> TntpCase:
    return load_tntp_folder(network_folder("SiouxFalls"))


@pytest.fixture(scope="session")
def winnipeg() -> TntpCase:
    return load_tntp_folder(network_folder("Winnipeg"))
