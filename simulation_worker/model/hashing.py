"""A stable sha256 of everything in a ``ModelInput`` that can change its results."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from simulation_worker.model.network import ExplicitDemand, ModelInput, Network

_FORMAT = b"cartolog-model-input/1"
_NOT_HASHED = {"link_rows"}  # where a link came from does not change results


def content_hash(model: ModelInput) -> str:
    """Hex sha256 over the network arrays, zones, demand and parameters, in a fixed order."""
    digest = hashlib.sha256(_FORMAT)
    _network(digest, model.network)
    _json(digest, [asdict(zone) for zone in model.zones])
    if isinstance(model.demand, ExplicitDemand):
        _array(digest, "explicit_trips", model.demand.trips)
    else:
        _json(digest, {"gravity": asdict(model.demand)})
    _json(digest, {
        "costs": asdict(model.costs),
        "units": asdict(model.units),
        "assignment": _assignment(model),
        "accessibility_minutes": model.accessibility_minutes,
    })
    return digest.hexdigest()


def _assignment(model: ModelInput) -> dict[str, Any]:
    """The assignment settings, without `unreachable` at its default: the inputs of runs made
    before it existed keep their hashes (and a reuse still finds them)."""
    found = asdict(model.assignment)
    if found.get("unreachable") == "refuse":
        del found["unreachable"]
    return found


def _network(digest: Any, net: Network) -> None:
    for field in fields(net):
        if field.name in _NOT_HASHED:
            continue
        value = getattr(net, field.name)
        if isinstance(value, np.ndarray):
            _array(digest, field.name, value)
        else:
            _json(digest, {field.name: value})


def _array(digest: Any, name: str, value: np.ndarray) -> None:
    canonical = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
    digest.update(f"{name}|{canonical.dtype.str}|{canonical.shape}|".encode())
    digest.update(canonical.tobytes())


def _json(digest: Any, value: object) -> None:
    digest.update(json.dumps(value, sort_keys=True, default=_exact).encode())
    digest.update(b"\x00")


def _exact(value: object) -> object:
    if isinstance(value, float | np.floating):
        return float(value).hex()
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot hash {type(value).__name__}")
