"""The release order of waiting jobs: fewest in flight per tenant, then request order."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from adapters.job_queue import Waiting, fair_order

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _job(tenant: str, second: float, attempt: int = 1) -> Waiting:
    at = T0 + timedelta(seconds=second)
    return Waiting(uuid.uuid4(), attempt, tenant, at, at)


def _tenants(order: list[Waiting]) -> str:
    return "".join(row.tenant_id for row in order)


def test_a_late_tenant_goes_before_a_busy_tenants_backlog() -> None:
    backlog = [_job("a", s) for s in range(40)]
    late = _job("b", 100)
    order = list(fair_order([*backlog, late], Counter({"a": 2})))
    assert order[0] is late
    assert order[1:] == backlog


def test_tenants_alternate_and_each_keeps_request_order() -> None:
    rows = [_job("a", 0), _job("a", 1), _job("a", 2), _job("b", 3), _job("b", 4)]
    order = list(fair_order(reversed(rows), Counter()))
    assert _tenants(order) == "ababa"
    assert [r for r in order if r.tenant_id == "a"] == rows[:3]
    assert [r for r in order if r.tenant_id == "b"] == rows[3:]


def test_equal_tenants_are_served_in_request_order() -> None:
    rows = [_job("c", 0), _job("a", 1), _job("b", 2)]
    assert list(fair_order(rows, Counter())) == rows


def test_in_flight_jobs_count_against_their_tenant() -> None:
    rows = [_job("a", 0), _job("a", 1), _job("b", 5), _job("b", 6), _job("b", 7)]
    order = list(fair_order(rows, Counter({"a": 3})))
    assert _tenants(order) == "bbbaa"


def test_a_retry_counts_from_the_end_of_its_back_off() -> None:
    retry = _job("a", 10, attempt=2)
    fresh = _job("a", 5)
    assert list(fair_order([retry, fresh], Counter())) == [fresh, retry]


def test_a_job_taken_over_from_a_dead_worker_goes_first() -> None:
    waiting = [_job("a", 0), _job("b", 1)]
    orphan = Waiting(uuid.uuid4(), 1, "b", T0 + timedelta(seconds=5),
                     T0 + timedelta(seconds=5), resent=True)
    order = list(fair_order([*waiting, orphan], Counter({"b": 1})))
    assert order[0] is orphan
    assert order[1:] == waiting
