"""Uploaded OMX files are read in a process of their own (decision 0709): a file that crashes
or hangs the HDF5 library is that upload's 422, and the reading process (the API, serving
every tenant) carries on."""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import time

import pytest

from adapters import demand_matrix as dm
from adapters.isolated import Bounds
from domain.errors import InvalidCommand
from tests.conftest import REPO

CRASHES = REPO / "tests" / "data" / "omx" / "crashes-hdf5.omx"
GOOD = dm.read_csv(b"origin,destination,trips,class\n1,2,900,car\n2,1,200,truck\n"
                   b"1,3,5,car\n3,2,7.5,truck\n")


def test_the_fixture_really_crashes_the_hdf5_library_in_process() -> None:
    """Without this the next test could pass by reading nothing dangerous."""
    code = ("from pathlib import Path; from adapters import demand_matrix as dm; "
            f"dm._read_omx_here(Path({str(CRASHES)!r}).read_bytes(), 10, 1000)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          timeout=60)
    assert done.returncode == -signal.SIGSEGV


def test_an_omx_that_crashes_hdf5_is_a_rejected_upload_and_the_reader_survives() -> None:
    with pytest.raises(InvalidCommand) as refused:
        dm.upload(CRASHES.read_bytes(), "omx", 10)
    assert refused.value.problems == [
        "the OMX file is corrupt: reading it stopped the HDF5 library (signal SIGSEGV)"]
    read = dm.read(dm.write_omx(GOOD), "omx", 10)  # this process reads the next one
    assert read.zone_ids == GOOD.zone_ids and sorted(read.trips) == ["car", "truck"]


def hangs(content: bytes, max_zones: int, max_cells: int) -> None:
    time.sleep(60)


def test_an_omx_whose_reading_hangs_is_stopped_and_rejected(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dm, "_read_omx_here", hangs)  # the reader process runs this instead
    started = time.monotonic()
    with pytest.raises(InvalidCommand) as refused:
        dm.read_omx(dm.write_omx(GOOD), 10, 1000, Bounds(256, 1.0))
    assert refused.value.problems == ["reading the OMX file took more than 1 s; it was stopped"]
    assert time.monotonic() - started < 30
    # the reader was stopped, not left sleeping
    assert not [p for p in multiprocessing.active_children() if p.name == "cartolog-upload-reader"]


@pytest.mark.parametrize("seed", range(200))
def test_damaged_omx_files_are_read_or_rejected_never_another_error(seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(dm.write_omx(GOOD))
    for _ in range(rng.choice((1, 2, 4, 8))):
        at = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.5:
            data[at] = rng.randrange(256)
        elif choice < 0.75:
            del data[at:at + rng.randrange(1, 64)]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    try:
        matrix = dm.read(bytes(data), "omx", 10)
    except InvalidCommand as error:
        assert error.problems and all(p and "\n" not in p for p in error.problems)
    else:
        assert set(matrix.zone_ids) <= {1, 2, 3}
