"""What comes with an uploaded file besides the file (api/imports/files.py): the options are
checked the same way for the API form and `cartolog dataset import`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adapters.gis.problems import ImportRejected
from api.imports.files import MAX_MAPPING_TEXT, ImportOptions, parse_mapping, read_network
from tests.unit.test_gmns_input import gmns


def gmns_folder(folder: Path, config: str | None = None, links: int = 1) -> Path:
    rows = [{"link_id": f"l{i}"} for i in range(links)]
    for kind, text in gmns(*rows, config=config).items():
        (folder / f"{kind}.csv").write_text(text)
    return folder


def problems(path: Path, options: ImportOptions) -> list[str]:
    with pytest.raises(ImportRejected) as error:
        read_network(path, options)
    return error.value.problems


# -- B6: the cap reaches the GMNS reader -------------------------------------------------------

def test_max_features_reaches_the_gmns_reader(tmp_path: Path) -> None:
    folder = gmns_folder(tmp_path, links=4)
    assert problems(folder, ImportOptions("gmns", max_features=3)) == [
        "link.csv: more than 3 rows; at most 3 are accepted"]
    assert len(read_network(folder, ImportOptions("gmns", max_features=4))[1].links) == 4


# -- B7: first_thru_node -----------------------------------------------------------------------

def test_the_first_thru_node_option_overrides_a_gmns_config(tmp_path: Path) -> None:
    folder = gmns_folder(tmp_path, config="dataset_name,first_thru_node\nx,2\n")
    assert read_network(folder, ImportOptions("gmns"))[1].first_thru_node == 2
    assert read_network(folder, ImportOptions("gmns", first_thru_node=3))[1].first_thru_node == 3


@pytest.mark.parametrize("value", [0, -1, 2**31])
def test_a_first_thru_node_out_of_range_is_refused(tmp_path: Path, value: int) -> None:
    assert problems(gmns_folder(tmp_path), ImportOptions("gmns", first_thru_node=value)) == [
        "first_thru_node: first_thru_node must be between 1 and 2147483647"]


def test_an_osm_import_refuses_a_first_thru_node(tmp_path: Path) -> None:
    # refused before the file is read: this one does not even exist
    assert problems(tmp_path / "city.osm.pbf", ImportOptions(first_thru_node=5)) == [
        "first_thru_node: first_thru_node cannot be set for an OSM file: every node of an OSM "
        "network is a road node (first_thru_node 1), zones are attached to them"]


# -- D: hexagon_km -----------------------------------------------------------------------------

@pytest.mark.parametrize("km", [0.0, 0.05, -1.0, 50.5, math.nan, math.inf])
def test_a_hexagon_width_outside_the_api_bounds_is_refused(tmp_path: Path, km: float) -> None:
    (problem,) = problems(tmp_path / "city.osm.pbf", ImportOptions(hexagon_km=km))
    assert problem == (f"hexagon_km: hexagon_km must be over 0.05 and at most 50 km, "
                       f"not {km:g}")


# -- C: the field mapping ----------------------------------------------------------------------

@pytest.mark.parametrize("depth", [100_000, 3_000])
def test_a_deeply_nested_mapping_is_refused_not_a_crash(depth: int) -> None:
    with pytest.raises(ImportRejected) as error:
        parse_mapping("[" * depth + "]" * depth)
    assert len(error.value.problems) == 1


def test_a_nesting_within_the_length_cap_is_refused_by_name() -> None:
    depth = MAX_MAPPING_TEXT // 2
    with pytest.raises(ImportRejected) as error:
        parse_mapping("[" * depth + "]" * depth)
    assert error.value.problems == [
        'mapping: nested too deeply; expected {"target": "source field", ...}']


def test_a_mapping_over_the_length_cap_is_refused() -> None:
    with pytest.raises(ImportRejected) as error:
        parse_mapping('{"capacity": "' + "c" * MAX_MAPPING_TEXT + '"}')
    assert error.value.problems == [
        f"mapping: {MAX_MAPPING_TEXT + 16} characters; at most {MAX_MAPPING_TEXT} are accepted"]


def test_a_plain_mapping_reads() -> None:
    assert parse_mapping('{"capacity": "CAP"}') == {"capacity": "CAP"}
