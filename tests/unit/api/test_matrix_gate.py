"""The process-wide gate around demand-matrix parsing: one at a time, a bounded wait, then 503."""

from __future__ import annotations

import anyio
import pytest

from api.matrix_gate import MatrixGate
from api.problems import ApiProblem


def test_a_second_upload_waits_then_gets_a_503_with_retry_after() -> None:
    gate = MatrixGate(slots=1, wait_s=0.2, retry_after_s=7, poll_s=0.01)

    async def scenario() -> None:
        async with gate.admitted():
            with pytest.raises(ApiProblem) as refused:
                async with gate.admitted():
                    raise AssertionError("two matrices admitted at once")
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "7"}
        async with gate.admitted():  # released: the next one gets in at once
            pass

    anyio.run(scenario)


def test_a_waiting_upload_starts_when_the_slot_frees_in_time() -> None:
    gate = MatrixGate(slots=1, wait_s=5.0, poll_s=0.01)
    order: list[str] = []

    async def first() -> None:
        async with gate.admitted():
            order.append("first in")
            await anyio.sleep(0.1)
            order.append("first out")

    async def second() -> None:
        await anyio.sleep(0.02)
        async with gate.admitted():
            order.append("second in")

    async def scenario() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            group.start_soon(second)

    anyio.run(scenario)
    assert order == ["first in", "first out", "second in"]


def test_a_failed_parse_releases_its_slot() -> None:
    gate = MatrixGate(slots=1, wait_s=0.05, poll_s=0.01)

    async def scenario() -> None:
        with pytest.raises(ValueError):
            async with gate.admitted():
                raise ValueError("bad file")
        async with gate.admitted():
            pass

    anyio.run(scenario)


def test_slots_bound_how_many_are_admitted_at_once() -> None:
    gate = MatrixGate(slots=2, wait_s=0.05, poll_s=0.01)

    async def scenario() -> None:
        async with gate.admitted(), gate.admitted():
            with pytest.raises(ApiProblem):
                async with gate.admitted():
                    pass

    anyio.run(scenario)
