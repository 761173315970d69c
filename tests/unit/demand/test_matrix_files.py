"""OMX and CSV demand files: what is read, what is written, and every reason one is refused."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import openmatrix as omx
import pytest
import tables

from adapters.demand_matrix import (
    MAX_ZONES,
    DemandMatrix,
    read_csv,
    read_omx,
    upload,
    write_csv,
    write_omx,
)
from domain.errors import InvalidCommand

TWO_CLASSES = b"origin,destination,trips,class\n1,2,5,car\n2,1,3,truck\n30,1,1.5,car\n"


def omx_bytes(tables: dict[str, np.ndarray], mapping: np.ndarray | None,
              mapping_name: str = "taz") -> bytes:
    """An OMX file written by openmatrix itself, as another tool would."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.omx"
        handle = omx.open_file(str(path), "w")
        for name, table in tables.items():
            handle[name] = table
        if mapping is not None:
            # Written straight into /lookup: openmatrix itself refuses a mapping of the
            # wrong length, but other tools' files may hold one.
            handle.create_array(handle.root.lookup, mapping_name, mapping)
        handle.close()
        return path.read_bytes()


def problems_of(error: pytest.ExceptionInfo[InvalidCommand]) -> str:
    return " | ".join(error.value.problems)


def test_csv_rows_become_one_matrix_per_class_over_every_zone_named() -> None:
    matrix = read_csv(TWO_CLASSES)
    assert matrix.zone_ids == (1, 2, 30)
    assert matrix.totals() == {"car": 6.5, "truck": 3.0}
    assert matrix.trips["car"][2, 0] == 1.5


def test_csv_without_a_class_column_is_one_class() -> None:
    matrix = read_csv(b"origin,destination,trips\n1,2,4\n2,1,1\n")
    assert matrix.totals() == {"all": 5.0}


@pytest.mark.parametrize(("content", "reason"), [
    (b"from,to,trips\n1,2,3\n", "header must be origin,destination,trips"),
    (b"origin,destination,trips\n1,2,-1\n", "line 2: trips must be a finite, non-negative"),
    (b"origin,destination,trips\n1,2,nan\n", "line 2: trips must be a finite"),
    (b"origin,destination,trips\n1,2,inf\n", "line 2: trips must be a finite"),
    (b"origin,destination,trips\n1,x,2\n", "line 2: origin and destination must be integer"),
    (b"origin,destination,trips\n1,2,many\n", "line 2: trips 'many' is not a number"),
    (b"origin,destination,trips\n1,2\n", "line 2: expected 3 columns, found 2"),
    (b"origin,destination,trips\n1,2,1\n1,2,4\n", "line 3: origin 1, destination 2 appears"),
    (b"origin,destination,trips\n", "has no rows"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_a_malformed_csv_names_its_problem(content: bytes, reason: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_csv(content)
    assert reason in problems_of(error)


@pytest.mark.parametrize(("cell", "reason"), [
    ("1_0", "trips '1_0' is not a plain decimal number"),
    ("\uff11", "trips '\uff11' is not a plain decimal number"),
    ("\u0663", "trips '\u0663' is not a plain decimal number"),
    ("infinity", "trips must be a finite number, not infinity"),
    (" nan ", "trips must be a finite number, not nan"),
    ("1e999", "trips must be a finite, non-negative number, not 1e999"),
    ("1e13", "trips must be at most 1e+12, not 1e13"),
    ("1000000000001", "trips must be at most 1e+12"),
])
def test_a_csv_refuses_trips_python_reads_but_a_file_does_not_mean(
        cell: str, reason: str) -> None:
    # float() takes '1_0' (10), full-width '1', 'infinity' and ' nan ': a CSV does not mean them.
    with pytest.raises(InvalidCommand) as error:
        read_csv(f"origin,destination,trips\n1,2,{cell}\n".encode())
    assert problems_of(error).startswith(f"line 2: {reason}")


@pytest.mark.parametrize("cells", ["1_0,2", "\uff11,2", "1,\u0662", "1.0,2", "1e0,2", "0x1,2"])
def test_a_csv_refuses_zone_ids_int_reads_but_a_file_does_not_mean(cells: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_csv(f"origin,destination,trips\n{cells},3\n".encode())
    assert problems_of(error) == ("line 2: origin and destination must be integer zone ids "
                                  "(ASCII digits)")


def test_a_spreadsheets_semicolons_and_decimal_commas_or_tabs_read_as_commas_do() -> None:
    """Excel in a locale whose decimal mark is a comma writes 'origin;destination;trips'
    and '12,5'; a tab-separated export is common too. Both read as the comma file does."""
    commas = read_csv(b"origin,destination,trips,class\n1,2,12.5,car\n2,1,4,truck\n")
    semicolons = read_csv(b"\xef\xbb\xbfOrigin;Destination;Trips;Class\r\n"
                          b"1;2;12,5;car\r\n2;1;4;truck\r\n")
    tabs = read_csv(b"origin\tdestination\ttrips\tclass\n1\t2\t12.5\tcar\n2\t1\t4\ttruck\n")
    assert semicolons.to_blob() == commas.to_blob() == tabs.to_blob()


@pytest.mark.parametrize(("content", "reason"), [
    (b"origin;destination;trips\n1;2;1.234,5\n", "line 2: trips '1.234,5' is not a number"),
    (b"origin;destination;trips\n1;2;1,2,3\n", "line 2: trips '1,2,3' is not a number"),
    (b"origin,destination,trips\n1,2,\"12,5\"\n", "line 2: trips '12,5' is not a number"),
    (b"origin\tdest\ttrips\n1\t2\t3\n", "(separated by commas, semicolons or tabs), not "
                                          "origin\\tdest\\ttrips"),
])
def test_a_decimal_comma_is_read_only_where_semicolons_separate_the_columns(
        content: bytes, reason: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_csv(content)
    assert reason in problems_of(error)


def test_a_csv_still_reads_plain_numbers_with_spaces_signs_and_exponents() -> None:
    matrix = read_csv(b"origin,destination,trips\n 1 ,+2, 2.5e3\n2,1,.5\n1,1,1E12\n")
    assert matrix.totals() == {"all": 2500.5 + 1e12}


def test_an_omx_with_trips_over_1e12_is_refused() -> None:
    table = np.array([[0.0, 1e12], [2e12, 0.0]])
    with pytest.raises(InvalidCommand) as error:
        read_omx(omx_bytes({"car": table}, np.array([1, 2])))
    assert problems_of(error) == "class 'car': 1 over 1e+12 value(s), first from zone 2 to zone 1"


def test_every_bad_csv_line_is_reported_not_just_the_first() -> None:
    with pytest.raises(InvalidCommand) as error:
        read_csv(b"origin,destination,trips\n1,2,-1\n2,1,3\n3,1,x\n")
    assert [p.split(":")[0] for p in error.value.problems] == ["line 2", "line 4"]


def test_an_omx_from_another_tool_is_matched_by_its_zone_mapping() -> None:
    table = np.array([[0.0, 2.0], [7.0, 0.0]])
    matrix = read_omx(omx_bytes({"car": table}, np.array([20, 10])))
    assert matrix.zone_ids == (10, 20)
    assert matrix.trips["car"][0, 1] == 7.0
    assert matrix.trips["car"][1, 0] == 2.0


def test_an_omx_written_by_cartolog_reads_back_in_openmatrix_with_zone_ids() -> None:
    matrix = read_csv(TWO_CLASSES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.omx"
        path.write_bytes(write_omx(matrix))
        handle = omx.open_file(str(path), "r")
        try:
            assert sorted(handle.list_matrices()) == ["car", "truck"]
            assert handle.list_mappings() == ["zone"]
            assert handle.mapping("zone") == {1: 0, 2: 1, 30: 2}
            np.testing.assert_array_equal(np.array(handle["truck"]), matrix.trips["truck"])
        finally:
            handle.close()


@pytest.mark.parametrize(("build", "reason"), [
    (lambda: b"this is not an HDF5 file", "not an OMX (HDF5) file"),
    (lambda: omx_bytes({"car": np.ones((2, 2))}, None), "has no zone mapping"),
    (lambda: omx_bytes({"car": np.ones((2, 2))}, np.array([1, 2, 3])),
     "matrix 'car' is 2x2, the zone mapping has 3 zones"),
    (lambda: omx_bytes({"car": np.ones((2, 2))}, np.array([1, 1])), "names a zone twice"),
    (lambda: omx_bytes({"car": np.ones((2, 2))}, np.array([1.5, 2.0])), "integer zone ids"),
    (lambda: omx_bytes({"car": np.ones((2, 2))}, np.array([b"a", b"b"])), "integer zone ids"),
    (lambda: omx_bytes({"car": np.array([[0.0, -2.0], [1.0, 0.0]])}, np.array([1, 2])),
     "class 'car': 1 negative value(s), first from zone 1 to zone 2"),
    (lambda: omx_bytes({"car": np.array([[0.0, 1.0], [math.nan, 0.0]])}, np.array([1, 2])),
     "class 'car': 1 non-finite value(s), first from zone 2 to zone 1"),
])
def test_a_malformed_omx_names_its_problem(build: object, reason: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_omx(build())  # type: ignore[operator]
    assert reason in problems_of(error)


def test_the_blob_is_the_same_whatever_file_or_order_the_matrix_came_from() -> None:
    from_csv = read_csv(TWO_CLASSES)
    shuffled = b"origin,destination,trips,class\n30,1,1.5,car\n2,1,3,truck\n1,2,5,car\n"
    from_omx = read_omx(write_omx(from_csv))
    assert from_csv.to_blob() == read_csv(shuffled).to_blob() == from_omx.to_blob()
    again = DemandMatrix.from_blob(from_csv.to_blob())
    assert again.zone_ids == from_csv.zone_ids
    np.testing.assert_array_equal(again.trips["car"], from_csv.trips["car"])


def test_csv_written_by_cartolog_reads_back_unchanged() -> None:
    matrix = read_csv(TWO_CLASSES)
    assert read_csv("".join(write_csv(matrix)).encode()).to_blob() == matrix.to_blob()


def test_aligned_sums_classes_over_the_model_zones_and_zero_fills_the_rest() -> None:
    matrix = read_csv(TWO_CLASSES)
    aligned = matrix.aligned((30, 2, 1, 99))
    assert aligned.shape == (4, 4)
    assert aligned[2, 1] == 5.0 and aligned[1, 2] == 3.0 and aligned[0, 2] == 1.5
    assert aligned.sum() == 9.5


def test_a_csv_with_more_classes_than_a_scenario_may_declare_is_refused() -> None:
    rows = "".join(f"1,2,1,c{k}\n" for k in range(11))
    with pytest.raises(InvalidCommand) as error:
        read_csv(f"origin,destination,trips,class\n{rows}".encode())
    assert problems_of(error) == "the file has 11 classes, at most 10 are allowed"


def test_an_omx_with_more_matrices_than_a_scenario_may_declare_is_refused() -> None:
    tables = {f"c{k}": np.ones((2, 2)) for k in range(11)}
    with pytest.raises(InvalidCommand) as error:
        read_omx(omx_bytes(tables, np.array([1, 2])))
    assert problems_of(error) == "the file has 11 classes, at most 10 are allowed"


def test_a_csv_allocates_one_table_per_class_not_one_per_row(
        monkeypatch: pytest.MonkeyPatch) -> None:
    allocated: list[tuple[int, ...]] = []
    zeros = np.zeros

    def counting_zeros(shape: tuple[int, ...], *args: object, **kwargs: object) -> np.ndarray:
        allocated.append(shape)
        return zeros(shape, *args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr("adapters.demand_matrix.np.zeros", counting_zeros)
    rows = "".join(f"{o},{d},1,{'car' if o % 2 else 'truck'}\n"
                   for o in range(1, 41) for d in range(1, 41))
    matrix = read_csv(f"origin,destination,trips,class\n{rows}".encode())
    assert matrix.totals() == {"car": 800.0, "truck": 800.0}
    assert allocated == [(40, 40), (40, 40)]


def chunked_omx(size: int, mapping: np.ndarray) -> bytes:
    """A tiny OMX declaring a compressed, never-written size x size matrix."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.omx"
        handle = omx.open_file(str(path), "w")
        handle.create_carray(handle.root.data, "car", atom=tables.Float64Atom(),
                             shape=(size, size), chunkshape=(64, 64),
                             filters=tables.Filters(complevel=9, complib="zlib"))
        handle.create_array(handle.root.lookup, "zone", mapping)
        handle.close()
        return path.read_bytes()


@pytest.mark.parametrize("size", [16_000, 1_000_000])
def test_an_omx_declaring_a_huge_matrix_is_refused_without_reading_it(
        size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    content = chunked_omx(size, np.array([1, 2]))
    assert len(content) < 100_000

    def no_read(*args: object) -> None:
        raise AssertionError("a table was read")

    monkeypatch.setattr(tables.CArray, "__getitem__", no_read)
    with pytest.raises(InvalidCommand) as error:
        read_omx(content)
    assert problems_of(error) == f"matrix 'car' is {size}x{size}, the zone mapping has 2 zones"


def test_an_omx_whose_zone_mapping_is_over_the_cap_is_refused_before_reading_tables() -> None:
    content = chunked_omx(300, np.arange(1, 301))
    with pytest.raises(InvalidCommand) as error:
        read_omx(content, max_zones=200)
    assert problems_of(error) == ("the file names 300 zones, at most 200 are allowed (no more "
                                  "than the scenario has)")
    with pytest.raises(InvalidCommand) as hard_cap:
        read_omx(chunked_omx(64, np.arange(1, MAX_ZONES + 2)))
    assert f"the file names {MAX_ZONES + 1} zones" in problems_of(hard_cap)


def test_a_csv_naming_more_zones_than_the_scenario_has_is_refused_before_allocating(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_zeros(*args: object) -> None:
        raise AssertionError("a table was allocated")

    monkeypatch.setattr("adapters.demand_matrix.np.zeros", no_zeros)
    rows = "".join(f"{k},{k + 1},1\n" for k in range(1, 1001))
    with pytest.raises(InvalidCommand) as error:
        upload(f"origin,destination,trips\n{rows}".encode(), "csv", max_zones=24)
    assert problems_of(error) == ("the file names 1001 zones, at most 24 are allowed (no more "
                                  "than the scenario has)")


@pytest.mark.parametrize(("content", "reason"), [
    (b"origin,destination,trips\n99999999999999999999,2,3\n",
     "line 2: a zone id must be between 1 and 2147483647"),
    (b"origin,destination,trips\n1,-99999999999999999999,3\n",
     "line 2: a zone id must be between 1 and 2147483647"),
    (b"origin,destination,trips\n1,2," + b"1" * 131_073 + b"\n",
     "line 2: field larger than field limit (131072)"),
])
def test_a_csv_with_out_of_range_zones_or_huge_fields_is_refused_not_a_crash(
        content: bytes, reason: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_csv(content)
    assert problems_of(error) == reason


@pytest.mark.parametrize(("mapping", "reason"), [
    (np.array([1, 2**63 + 5], dtype=np.uint64),
     "zone mapping 'taz' must hold zone ids from 1 to 2147483647"),
    (np.array([1.0, 1e30]), "zone mapping 'taz' must hold zone ids from 1 to 2147483647"),
    (np.array([0, 1]), "zone mapping 'taz' must hold zone ids from 1 to 2147483647"),
])
def test_an_omx_zone_mapping_out_of_range_is_refused_not_a_crash(
        mapping: np.ndarray, reason: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        read_omx(omx_bytes({"car": np.ones((2, 2))}, mapping))
    assert problems_of(error) == reason


def test_an_omx_matrix_of_byte_strings_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidCommand) as error:
        read_omx(omx_bytes({"car": np.array([[b"a", b"b"], [b"c", b"d"]])}, np.array([1, 2])))
    assert problems_of(error) == "matrix 'car' must hold numbers, not |S1"
