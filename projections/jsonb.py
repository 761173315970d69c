"""JSON values as a JSONB column can hold them.

JSONB refuses NaN, ±Infinity and the NUL character. Commands refuse them (domain/rules.py),
but events stored before that, and numbers a model computed, may still carry them. Here a
non-finite number becomes null (as the API shows it) and NUL becomes U+FFFD, so one such
event cannot stop a projection (decision 0010).
"""

from __future__ import annotations

import math
from typing import Any


def storable(value: Any) -> Any:
    """`value` with non-finite numbers as None and NUL characters as U+FFFD, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value
