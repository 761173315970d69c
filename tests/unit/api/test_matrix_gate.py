"""The process-wide gate around demand-matrix parsing: one at a time, a bounded wait, then 503."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest

from api.matrix_gate import DownloadGate, MatrixGate, TenantTurns
from api.problems import ApiProblem
from api.routes.datasets import IMPORTS


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


def test_a_tenant_streams_at_most_its_share_of_matrix_downloads() -> None:
    gate = DownloadGate(slots=2, streams_per_tenant=2, retry_after_s=4)
    first, second = gate.open_stream("acme"), gate.open_stream("acme")
    with pytest.raises(ApiProblem) as refused:
        gate.open_stream("acme")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "4"}
    other = gate.open_stream("rival")  # another tenant is not held back
    # released once: when the body has been sent ...
    assert list(first.body(iter([b"a", b"b"]))) == [b"a", b"b"]
    third = gate.open_stream("acme")
    # ... when sending fails ...
    with pytest.raises(OSError):
        list(second.body(_failing()))
    second.close()  # a second close changes nothing
    fourth = gate.open_stream("acme")
    with pytest.raises(ApiProblem):
        gate.open_stream("acme")
    # ... and when the body is dropped unsent (a client gone before the first chunk)
    third.body(iter([b"never sent"]))
    del third
    gc.collect()
    gate.open_stream("acme").close()
    for stream in (fourth, other):
        stream.close()
    assert gate._streams == {}


def _failing() -> Iterator[bytes]:
    yield b"x"
    raise OSError("client gone")


def test_downloads_are_built_two_at_a_time_and_one_per_tenant() -> None:
    gate = DownloadGate(slots=2, wait_s=0.2, retry_after_s=9, poll_s=0.01)

    async def scenario() -> None:
        async with gate.building("acme"):
            with pytest.raises(ApiProblem) as refused:  # the same tenant waits its turn
                async with gate.building("acme"):
                    raise AssertionError("one tenant built two downloads at once")
            assert refused.value.status == 503
            assert refused.value.headers == {"Retry-After": "9"}
            async with gate.building("rival"):  # another tenant takes the second slot
                with pytest.raises(ApiProblem):
                    async with gate.building("third"):
                        raise AssertionError("three downloads built at once")
        async with gate.building("acme"), gate.building("third"):
            pass  # all released

    anyio.run(scenario)


def test_dataset_imports_take_turns_per_tenant_and_name_what_keeps_them_waiting() -> None:
    gate = TenantTurns("other datasets are being imported", slots=2, wait_s=0.1,
                       retry_after_s=3, poll_s=0.01)

    async def scenario() -> None:
        async with gate.turn("acme"), gate.turn("rival"):
            for tenant in ("acme", "third"):  # its own turn taken; both slots taken
                with pytest.raises(ApiProblem) as refused:
                    async with gate.turn(tenant):
                        raise AssertionError(f"{tenant} was let in")
                assert refused.value.status == 503
                assert refused.value.detail.startswith("other datasets are being imported; ")
        async with gate.turn("third"):
            pass

    anyio.run(scenario)
    assert IMPORTS.busy == "other datasets are being imported"
