"""adapters.isolated: a reader in a child process answers with its result or its expected
exception; a crash, a timeout, running out of memory or any other exception is one line
(decisions 0709, 0710), and the calling process carries on."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from adapters.gis.problems import FeatureProblem, ImportRejected
from adapters.isolated import Bounds, IsolatedFailure, run_isolated
from domain.errors import InvalidCommand

BOUNDS = Bounds(memory_mb=256, timeout_s=30.0)


def doubled(values: list[int]) -> dict[str, list[int]]:
    return {"doubled": [2 * v for v in values]}


def rejects(reason: str) -> None:
    raise ImportRejected("1 feature(s) rejected; nothing was stored",
                         [FeatureProblem("links", 3, reason)])


def crashes() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def sleeps(seconds: float) -> None:
    time.sleep(seconds)


def allocates(mib: int) -> int:
    return len(bytearray(mib * 2**20))


def fails() -> None:
    raise ValueError("bad magic number")


def test_the_result_comes_back() -> None:
    assert run_isolated(doubled, ([1, 2, 3],), BOUNDS, what="x") == {"doubled": [2, 4, 6]}


def test_an_expected_exception_is_raised_here_with_its_details() -> None:
    with pytest.raises(ImportRejected) as refused:
        run_isolated(rejects, ("capacity is negative",), BOUNDS, what="the file",
                     expected=(InvalidCommand,))
    assert str(refused.value) == "1 feature(s) rejected; nothing was stored"
    assert refused.value.problems == ["links[3]: capacity is negative"]
    assert refused.value.features == [FeatureProblem("links", 3, "capacity is negative")]


def test_a_crash_is_a_failure_naming_the_signal() -> None:
    with pytest.raises(IsolatedFailure) as failed:
        run_isolated(crashes, (), BOUNDS, what="the file", reader="GDAL")
    assert str(failed.value) == "the file is corrupt: reading it stopped GDAL (signal SIGSEGV)"


def test_a_reader_past_its_time_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(IsolatedFailure) as failed:
        run_isolated(sleeps, (60.0,), Bounds(256, 0.5), what="the file")
    assert str(failed.value) == "reading the file took more than 0.5 s; it was stopped"
    assert time.monotonic() - started < 20
    assert not [p for p in multiprocessing.active_children()
                if p.name == "cartolog-upload-reader"]


def test_a_reader_past_its_memory_is_stopped_and_within_it_is_not() -> None:
    assert run_isolated(allocates, (64,), BOUNDS, what="the file") == 64 * 2**20
    with pytest.raises(IsolatedFailure) as failed:
        run_isolated(allocates, (1024,), BOUNDS, what="the file")
    assert str(failed.value) == ("reading the file needed more than 256 MB of memory; "
                                 "it was stopped")


def test_an_unexpected_exception_is_a_failure_naming_it() -> None:
    with pytest.raises(IsolatedFailure) as failed:
        run_isolated(fails, (), BOUNDS, what="the file", expected=(InvalidCommand,))
    assert str(failed.value) == "the file could not be read: ValueError: bad magic number"


def test_this_process_reads_on_after_a_crash() -> None:
    with pytest.raises(IsolatedFailure):
        run_isolated(crashes, (), BOUNDS, what="the file")
    assert run_isolated(doubled, ([5],), BOUNDS, what="x") == {"doubled": [10]}
