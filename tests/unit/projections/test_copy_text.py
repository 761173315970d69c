"""The generated COPY row formatters write exactly what the per-column formatters write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.projector.copytext import copy_formatter, rows_formatter
from adapters.projector.rows import KeyLedger

COLUMNS = [("flow", "double precision"), ("name", "text"), ("closed", "boolean"),
           ("zone_id", "integer"), ("run_id", "uuid"), ("at", "timestamp with time zone"),
           ("parameters", "jsonb"), ("geom", "geometry(LineString,4326)"), ("n", "bigint"),
           ("odd \"name\" {x}", "text")]

values = {
    "flow": st.none() | st.floats(allow_nan=False) | st.integers(-10**6, 10**6),
    "name": st.none() | st.text(),
    "closed": st.none() | st.booleans(),
    "zone_id": st.none() | st.integers(-2**31, 2**31 - 1),
    "run_id": st.none() | st.uuids().map(str),
    "at": st.none() | st.datetimes(timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=-5))])),
    "parameters": st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text()),
    "geom": st.none() | st.just("SRID=4326;LINESTRING(0.0 1.5,2.25 3.0)"),
    "n": st.none() | st.integers(0, 2**62),
    "odd \"name\" {x}": st.none() | st.text(max_size=5),
}
rows = st.lists(st.fixed_dictionaries({}, optional=values), max_size=5)


def reference(columns: list[tuple[str, str]], batch: list[dict[str, object]]) -> str:
    formats = [(c, copy_formatter(t)) for c, t in columns]
    return "".join("\t".join(f(r.get(c)) for c, f in formats) + "\n" for r in batch)


@settings(deadline=None)
@given(rows)
def test_generated_formatter_equals_the_per_column_formatters(batch: list[dict[str, object]]
                                                               ) -> None:
    assert rows_formatter(COLUMNS)(batch) == reference(COLUMNS, batch)


def test_escapes_nulls_and_types() -> None:
    row = {"flow": 2, "name": "a\tb\\c\nd", "closed": False, "at": datetime(2026, 1, 2, tzinfo=UTC)}
    text = rows_formatter(COLUMNS)([row])
    assert text == ("2.0\ta\\tb\\\\c\\nd\tf\t\\N\t\\N\t2026-01-02T00:00:00+00:00\t\\N\t\\N\t\\N"
                    "\t\\N\n")


def test_the_ledger_sends_only_keys_it_never_saw_straight_to_copy() -> None:
    ledger = KeyLedger(["runs"])
    fresh, others = ledger.split("runs", [(("a", 1), {"n": 1}), (("a", 2), {"n": 2})])
    assert [r["n"] for r in fresh] == [1, 2] and others == []
    fresh, others = ledger.split("runs", [(("a", 2), {"n": 3}), (("b", 1), {"n": 4})])
    assert [r["n"] for r in fresh] == [4] and [r["n"] for r in others] == [3]
    assert ledger.claim("runs", ("a", 1)) is False and ledger.claim("runs", ("c", 1)) is True
    # Tables it was not told are fresh (shared ones, like projection_errors) never qualify.
    assert ledger.split("errors", [(("x",), {"n": 5})]) == ([], [{"n": 5}])


def test_a_full_ledger_sends_everything_through_the_upsert() -> None:
    ledger = KeyLedger(["runs"], capacity=2)
    fresh, _ = ledger.split("runs", [(("a",), {}), (("b",), {})])
    assert len(fresh) == 2
    assert ledger.split("runs", [(("c",), {"n": 1})]) == ([], [{"n": 1}])
    assert ledger.claim("runs", ("d",)) is False
