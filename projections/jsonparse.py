"""JSON parsing for replays: orjson, with the standard library for what orjson refuses.

orjson gives the same Python values as `json.loads` (dicts, lists, str, int, float, bool,
None; floats correctly rounded) five times faster, which matters when a replay parses
every event and every result document of the log. It refuses NaN/Infinity literals and
integers beyond 64 bits, which `json.loads` accepts: those documents take the slow path.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON exactly as `json.loads` does."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
