"""Ports the domain needs from the outside, implemented in adapters/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.simulation import SimulationRun


class BlobNotFound(KeyError):
    """No blob with that hash for that tenant."""


class BlobStore(Protocol):
    """Content-addressed storage: the key of a blob is the sha256 of its bytes."""

    def put(self, tenant_id: str, content: bytes) -> str:
        """Store the bytes (idempotent) and return their sha256 hex digest; QuotaExceeded
        when new bytes would take the tenant past its storage quota."""
        ...

    def get(self, tenant_id: str, sha256: str) -> bytes:
        """The bytes stored under `sha256` for this tenant; BlobNotFound otherwise."""
        ...


@dataclass(frozen=True)
class ResolvedInput:
    """A run's model input, stored by claim check, and the model version that will run it."""

    input_sha256: str
    input_hash: str
    model_version: str


Resolver = Callable[[SimulationRun], ResolvedInput]
"""Builds and stores a run's model input: the dispatcher calls it, simulation_worker
implements it (model_input.resolve_input)."""


class InputUnavailable(RuntimeError):
    """The run's model input cannot be built (the job then fails with this error)."""
