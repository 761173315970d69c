"""JSONB values: what an old event or a model may carry, made storable."""

from __future__ import annotations

import json
import math

from projections.jsonb import storable


def test_non_finite_numbers_become_null_and_nul_a_replacement_character() -> None:
    value = {"gap": math.nan, "k\x00": [math.inf, -math.inf, 1.5, ("a\x00",)],
             "n": {"deep": [None, True, 3]}}
    stored = storable(value)
    assert stored == {"gap": None, "k\ufffd": [None, None, 1.5, ["a\ufffd"]],
                      "n": {"deep": [None, True, 3]}}
    json.dumps(stored, allow_nan=False)
