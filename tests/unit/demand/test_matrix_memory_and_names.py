"""A matrix upload's memory bound (cells checked before any table is allocated, one blob copy)
and OMX downloads of names HDF5 cannot hold (decision 0707)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tables

from adapters.demand_matrix import (
    MAGIC,
    MAX_CELLS,
    MAX_ZONES,
    DemandMatrix,
    OmxNameError,
    cells_within,
    omx_name_problem,
    read_csv,
    read_omx,
    upload,
    write_csv,
    write_omx,
)
from api.services import ApiLimits
from domain.errors import InvalidCommand
from tests.unit.demand.test_matrix_files import chunked_omx, omx_bytes, problems_of


def refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("a table was allocated or read")


def no_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.demand_matrix.np.zeros", refuse)


def csv_over(zones: int, classes: int) -> bytes:
    """A small CSV naming `zones` zones in class c0 and one row in each other class."""
    rows = [f"{k},{k + 1},1,c0\n" for k in range(1, zones)]
    rows += [f"1,2,1,c{c}\n" for c in range(1, classes)]
    return ("origin,destination,trips,class\n" + "".join(rows)).encode()


def test_a_csv_over_the_cell_cap_is_refused_before_any_table_is_allocated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    no_allocation(monkeypatch)
    content = csv_over(1_829, 10)  # 1,829 x 1,829 x 10 = 33,452,410 cells; a 30 kB file
    assert len(content) < 40_000
    with pytest.raises(InvalidCommand) as error:
        upload(content, "csv", max_zones=20_000)
    assert problems_of(error) == (
        "the matrix would hold 1829 x 1829 zones x 10 class(es) = 33,452,410 cells, at most "
        "33,423,360 are allowed (267 MB of trips)")


def test_the_cell_cap_counts_zones_squared_times_classes() -> None:
    assert read_csv(csv_over(10, 3), max_cells=300).totals() == {
        "c0": 9.0, "c1": 1.0, "c2": 1.0}
    with pytest.raises(InvalidCommand) as error:
        read_csv(csv_over(10, 3), max_cells=299)
    assert "= 300 cells, at most 299 are allowed" in problems_of(error)


def test_an_omx_over_the_cell_cap_is_refused_before_any_table_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    content = chunked_omx(6_000, np.arange(1, 6_001))  # 36e6 cells, never written
    monkeypatch.setattr(tables.CArray, "__getitem__", refuse)
    with pytest.raises(InvalidCommand) as error:
        read_omx(content)
    assert problems_of(error).startswith(
        "the matrix would hold 6000 x 6000 zones x 1 class(es) = 36,000,000 cells")


def test_an_omx_cell_count_includes_every_class() -> None:
    content = omx_bytes({f"c{k}": np.ones((3, 3)) for k in range(4)}, np.array([1, 2, 3]))
    assert read_omx(content, max_cells=36).zone_ids == (1, 2, 3)
    with pytest.raises(InvalidCommand) as error:
        read_omx(content, max_cells=35)
    assert "3 x 3 zones x 4 class(es) = 36 cells, at most 35" in problems_of(error)


def test_upload_takes_the_cap_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API and the CLI pass what their blob limit holds (``cells_within``)."""
    no_allocation(monkeypatch)
    with pytest.raises(InvalidCommand) as error:
        upload(csv_over(100, 1), "csv", max_cells=cells_within(1024 * 1024 + 8 * 9_999))
    assert "= 10,000 cells, at most 9,999 are allowed" in problems_of(error)


@pytest.mark.parametrize("zone_ids", [(1, 2, 30), (30, 1, 2)])
def test_the_blob_bytes_are_unchanged_by_the_single_copy_layout(
        zone_ids: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    matrix = DemandMatrix(zone_ids, {"truck": rng.random((3, 3)), "car": rng.random((3, 3))})
    canonical = matrix.canonical()
    header = json.dumps({"zone_ids": list(canonical.zone_ids), "classes": ["car", "truck"]},
                        separators=(",", ":")).encode()
    assert matrix.to_blob() == (MAGIC + header + b"\n" + canonical.trips["car"].tobytes()
                                + canonical.trips["truck"].tobytes())
    again = DemandMatrix.from_blob(matrix.to_blob())
    assert again.zone_ids == (1, 2, 30)
    order = np.argsort(zone_ids)
    np.testing.assert_array_equal(again.trips["car"], matrix.trips["car"][np.ix_(order, order)])


def test_an_empty_matrix_still_has_a_blob() -> None:
    assert DemandMatrix((), {"a": np.zeros((0, 0))}).to_blob() == (
        MAGIC + b'{"zone_ids":[],"classes":["a"]}\n')


@pytest.mark.parametrize("name", ["a/b", ".", "_v_time", "_c_x", "_i_x", "_p_x", "a\x00b"])
def test_write_omx_refuses_a_name_hdf5_cannot_hold_before_writing(name: str) -> None:
    matrix = DemandMatrix((1, 2), {name: np.eye(2), "car": np.eye(2)})
    with pytest.raises(OmxNameError) as error:
        write_omx(matrix)
    assert error.value.problems == [omx_name_problem(name)]
    assert f"{name!r} cannot be an OMX matrix name" in str(error.value)
    assert "".join(write_csv(matrix)).splitlines()[1].endswith(f",{name}")


@pytest.mark.parametrize("name", ["car", "..", "a b", "hgv-3", "_v", "_x_y", "v_time", "é"])
def test_names_hdf5_can_hold_still_write_and_read_back(name: str) -> None:
    assert omx_name_problem(name) is None
    matrix = DemandMatrix((1, 2), {name: np.eye(2)})
    assert list(read_omx(write_omx(matrix)).trips) == [name]


def test_max_cells_fits_the_default_blob_limit() -> None:
    # The blob is the tables plus a header of at most 20,000 zone ids (~220 kB).
    assert MAX_CELLS * 8 + 250_000 < 256 * 1024 * 1024
    assert MAX_CELLS == cells_within(256 * 1024 * 1024) == ApiLimits().matrix_cells


@pytest.mark.parametrize("blob_max", [64 * 1024 * 1024, 256 * 1024 * 1024, 2 * 1024**3])
def test_the_cell_cap_follows_the_blob_limit(blob_max: int) -> None:
    """A matrix at the cap fits the blob limit, whatever the operator set it to."""
    cells = cells_within(blob_max)
    header = len(json.dumps({"zone_ids": list(range(10**9, 10**9 + MAX_ZONES)),
                             "classes": ["x" * 64] * 10}))
    assert cells * 8 + header + 64 <= blob_max < (cells + 1) * 8 + 1024 * 1024
