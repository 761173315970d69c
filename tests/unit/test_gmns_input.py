"""GMNS files in: every value a reader could misread is refused by name, not truncated,
replaced by a default or passed on as infinity (tests/integration/gis for the HTTP side)."""

from __future__ import annotations

import csv
import io

import pytest

from adapters.gis.gmns import read_gmns
from adapters.gis.problems import ImportRejected
from domain.values import Network

NODES = "node_id,x_coord,y_coord\n1,0.0,0.0\n2,0.01,0.0\n3,0.01,0.01\n"
LINK = {"link_id": "a", "from_node_id": "1", "to_node_id": "2", "directed": "1",
        "length": "1.5", "free_speed": "60", "capacity": "900", "lanes": "2"}


def gmns(*links: dict[str, str], nodes: str = NODES, config: str | None = None
         ) -> dict[str, str]:
    """node.csv, and link.csv of `links` (each LINK with some fields changed; '' blanks)."""
    rows = [{**LINK, **change} for change in links or ({},)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)),
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files = {"node": nodes, "link": out.getvalue()}
    if config is not None:
        files["config"] = config
    return files


def refused(files: dict[str, str], **options: int | str) -> list[str]:
    with pytest.raises(ImportRejected) as error:
        read_gmns(files, **options)
    return error.value.problems


def test_the_plain_file_reads() -> None:
    network = read_gmns(gmns())
    (link,) = network.links
    assert (link.capacity, link.free_flow_time, link.lanes, link.link_type) == \
        (1800.0, 1.5, 2.0, 1)


# -- B1: ids are whole numbers ---------------------------------------------------------------

@pytest.mark.parametrize("field", ["from_node_id", "to_node_id"])
def test_a_decimal_node_reference_is_refused_not_truncated(field: str) -> None:
    assert refused(gmns({field: "1.5"})) == [f"link.csv[0]: {field} '1.5' is not a whole number"]


def test_a_decimal_node_id_is_refused_not_truncated() -> None:
    nodes = NODES.replace("\n2,", "\n2.5,")
    assert "node.csv[1]: node_id '2.5' is not a whole number" in refused(gmns(nodes=nodes))


def test_a_whole_number_written_with_a_point_is_that_number() -> None:
    network = read_gmns(gmns({"to_node_id": "2.0"}, nodes=NODES.replace("\n2,", "\n2.0,")))
    assert network.links[0].to_node == 2 and [n.id for n in network.nodes] == [1, 2, 3]


@pytest.mark.parametrize("text", ["1_0", "\uff12", "0x2", "2e400"])
def test_an_id_python_reads_but_a_file_does_not_mean_is_refused(text: str) -> None:
    (problem,) = refused(gmns({"to_node_id": text}))
    assert problem.startswith("link.csv[0]: to_node_id")


# -- B2: non-finite numbers --------------------------------------------------------------------

@pytest.mark.parametrize(("field", "text"), [
    ("free_speed", "inf"), ("free_speed", "Infinity"), ("length", "nan"), ("lanes", "-inf"),
    ("capacity", "1e999"), ("vdf_alpha", "NaN"), ("toll", "inf")])
def test_a_non_finite_link_value_is_refused(field: str, text: str) -> None:
    assert refused(gmns({field: text})) == [
        f"link.csv[0]: {field} must be a finite number, not {text}"]


def test_an_infinite_speed_no_longer_makes_a_free_link() -> None:
    # 60 * length / inf was a free-flow time of 0: a link every route took for free.
    assert refused(gmns({"free_speed": "inf"})) == [
        "link.csv[0]: free_speed must be a finite number, not inf"]


@pytest.mark.parametrize(("where", "files"), [
    ("node.csv[0]: x_coord", gmns(nodes=NODES.replace("1,0.0,0.0", "1,nan,0.0"))),
    ("zone.csv[0]: population", {**gmns(), "zone": "zone_id,node_id,population\n1,1,inf\n"}),
    ("demand.csv[0]: volume", {**gmns(), "zone": "zone_id\n1\n",
                               "demand": "o_zone_id,d_zone_id,volume\n1,1,nan\n"}),
    ("config[0]: first_thru_node", gmns(config="first_thru_node\ninf\n")),
])
def test_a_non_finite_value_is_refused_in_every_file(where: str, files: dict[str, str]) -> None:
    assert any(p.startswith(where) for p in refused(files))


def test_a_value_over_1e12_is_refused() -> None:
    assert refused(gmns({"toll": "2e12"})) == [
        "link.csv[0]: toll must be at most 1e+12 in magnitude, not 2e12"]


@pytest.mark.parametrize("text", ["1_0", "\uff11"])
def test_python_only_number_syntax_is_refused(text: str) -> None:
    (problem,) = refused(gmns({"length": text}))
    assert problem == (f"link.csv[0]: length {text!r} is not a plain decimal number (digits "
                       "0-9, an optional sign, point and exponent; no '_' or other digits)")


# -- B3: facility_type -------------------------------------------------------------------------

UNKNOWN_TYPE = (
    "is neither a link type number 0..2147483647 nor a known name: motorway, trunk, primary, "
    "secondary, tertiary, unclassified, residential, living_street, service, road, "
    "motorway_link, trunk_link, primary_link, secondary_link, tertiary_link, freeway, "
    "expressway, principal_arterial, major_arterial, arterial, minor_arterial, collector, "
    "major_collector, minor_collector, local, local_road, ramp")


@pytest.mark.parametrize(("text", "link_type"), [
    ("motorway", 1), ("Primary", 3), ("living street", 8), ("motorway-link", 11),
    ("Freeway", 1), ("minor arterial", 4), ("local", 7)])
def test_a_named_facility_type_gets_the_link_type_an_osm_import_gives(
        text: str, link_type: int) -> None:
    """GMNS writes facility_type as text (osm2gmns: OSM's highway class): the names an OSM
    import knows get its numbers, so trucks banned from link type 1 keep off both."""
    assert read_gmns(gmns({"facility_type": text})).links[0].link_type == link_type


def test_a_blank_facility_type_falls_back_on_a_link_type_column() -> None:
    assert read_gmns(gmns({"facility_type": "", "link_type": "6"})).links[0].link_type == 6
    assert refused(gmns({"facility_type": "", "link_type": "x"})) == [
        "link.csv[0]: link_type 'x' is not a number"]

@pytest.mark.parametrize(("text", "reason"), [
    ("abc", f"facility_type 'abc' {UNKNOWN_TYPE}"),
    ("-3", "facility_type -3 is outside 0..2147483647"),
    ("2.5", "facility_type '2.5' is not a whole number"),
    ("nan", f"facility_type 'nan' {UNKNOWN_TYPE}"),
])
def test_a_bad_facility_type_is_reported_not_turned_into_1(text: str, reason: str) -> None:
    assert refused(gmns({"facility_type": text})) == [f"link.csv[0]: {reason}"]


@pytest.mark.parametrize(("text", "link_type"), [("0", 0), ("7", 7), ("3.0", 3), ("", 1)])
def test_a_facility_type_is_the_link_type(text: str, link_type: int) -> None:
    # 0 is a link type, as in every other import (rules: link_type 0..2147483647); it was 1.
    assert read_gmns(gmns({"facility_type": text})).links[0].link_type == link_type


# -- B4: negative free-flow time or capacity ---------------------------------------------------

@pytest.mark.parametrize(("change", "reason"), [
    ({"vdf_fftt": "-1"}, "vdf_fftt must not be negative"),
    ({"link_capacity": "-5"}, "link_capacity must be positive"),
    ({"link_capacity": "0"}, "link_capacity must be positive"),
    ({"capacity": "-900"}, "capacity must be positive"),
    ({"capacity": "0"}, "capacity must be positive"),
])
def test_a_negative_time_or_capacity_is_refused_not_taken_as_absent(
        change: dict[str, str], reason: str) -> None:
    assert refused(gmns(change)) == [f"link.csv[0]: {reason}"]


def test_given_extensions_are_used_and_a_zero_free_flow_time_is_one() -> None:
    (link,) = read_gmns(gmns({"vdf_fftt": "0", "link_capacity": "1234"})).links
    assert (link.free_flow_time, link.capacity) == (0.0, 1234.0)


# -- B5: directed=0 ----------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["0", "false", "FALSE"])
def test_an_undirected_link_is_both_directions(flag: str) -> None:
    network = read_gmns(gmns({"directed": flag, "geometry": "LINESTRING (0 0, 0.005 0.001, "
                                                            "0.01 0)"}))
    forward, backward = network.links
    assert (forward.id, forward.from_node, forward.to_node) == ("a", 1, 2)
    assert (backward.id, backward.from_node, backward.to_node) == ("a-reverse", 2, 1)
    assert backward.geometry == forward.geometry[::-1]
    assert (backward.capacity, backward.length, backward.free_flow_time, backward.lanes) == \
        (forward.capacity, forward.length, forward.free_flow_time, forward.lanes)
    assert network.problems() == []


@pytest.mark.parametrize("flag", ["1", "true", "True", ""])
def test_a_directed_link_is_one_direction(flag: str) -> None:
    assert [k.id for k in read_gmns(gmns({"directed": flag})).links] == ["a"]


def test_a_reverse_id_that_another_link_has_is_refused() -> None:
    files = gmns({"directed": "0"}, {"link_id": "a-reverse", "from_node_id": "2",
                                     "to_node_id": "3"})
    assert refused(files) == [
        "link.csv[0]: link 'a' is undirected (directed=0): its reverse direction would be link "
        "'a-reverse', and link.csv already has a link of that id"]


def test_an_undirected_link_id_too_long_for_its_reverse_is_refused() -> None:
    (problem,) = refused(gmns({"directed": "0", "link_id": "x" * 95}))
    assert problem.startswith("link.csv[0]: link_id of an undirected link (directed=0) must be "
                              "at most 92 characters")


def test_an_unknown_directed_value_is_refused() -> None:
    assert refused(gmns({"directed": "maybe"})) == [
        "link.csv[0]: directed 'maybe' must be 1 or 0 (true or false)"]


# -- B6: max_features --------------------------------------------------------------------------

def test_more_rows_than_max_features_are_refused() -> None:
    links = [{"link_id": str(i)} for i in range(4)]
    assert refused(gmns(*links), max_features=3) == [
        "link.csv: more than 3 rows; at most 3 are accepted"]
    assert refused(gmns(), max_features=2) == [
        "node.csv: more than 2 rows; at most 2 are accepted"]


def test_undirected_rows_count_twice_against_max_features() -> None:
    links = [{"link_id": "a", "directed": "0"}, {"link_id": "b", "directed": "0",
                                                  "from_node_id": "2", "to_node_id": "3"}]
    assert refused(gmns(*links), max_features=3) == [
        "link.csv: its rows make 4 links (an undirected row makes two); at most 3 are accepted"]
    assert len(read_gmns(gmns(*links), max_features=4).links) == 4


# -- B7: first_thru_node -----------------------------------------------------------------------

def test_a_given_first_thru_node_overrides_the_config_file() -> None:
    files = gmns(config="dataset_name,first_thru_node\nx,2\n")
    assert read_gmns(files).first_thru_node == 2
    assert read_gmns(files, first_thru_node=3).first_thru_node == 3
    assert isinstance(read_gmns(gmns()), Network) and read_gmns(gmns()).first_thru_node == 1


# -- units, crs and line direction (decision 0715) ----------------------------------------------

@pytest.mark.parametrize(("config", "length_km", "minutes"), [
    (None, 1.5, 1.5),  # no config.csv: km and km/h
    ("long_length,speed\nkm,kmh\n", 1.5, 1.5),
    ("long_length,speed\nmi,mph\n", 1.5 * 1.609344, 1.5),  # miles at 60 mph: 1.5 minutes
    ("long_length,speed\nm,km/h\n", 0.0015, 0.0015),  # osm2gmns writes metres and km/h
    ("long_length,speed\nft,mph\n", 1.5 * 0.0003048, 1.5 * 0.0003048 / 1.609344),
])
def test_lengths_and_speeds_are_read_in_config_units(
        config: str | None, length_km: float, minutes: float) -> None:
    (link,) = read_gmns(gmns(config=config)).links
    assert link.length == pytest.approx(length_km, rel=1e-12)
    assert link.free_flow_time == pytest.approx(minutes, rel=1e-12)


def test_vdf_fftt_is_minutes_whatever_the_length_unit() -> None:
    (link,) = read_gmns(gmns({"vdf_fftt": "2.5"}, config="long_length\nmi\n")).links
    assert (link.length, link.free_flow_time) == (pytest.approx(1.5 * 1.609344), 2.5)


def test_an_unknown_unit_or_crs_is_refused() -> None:
    assert refused(gmns(config="long_length,speed,crs\nfurlong,knots,EPSG:999999\n")) == [
        "config.csv[0]: long_length 'furlong' is not a unit Cartolog converts: one of feet, "
        "foot, ft, kilometer, kilometers, kilometre, kilometres, km, m, meter, meters, "
        "metre, metres, mi, mile, miles",
        "config.csv[0]: speed 'knots' is not a unit Cartolog converts: one of km/h, km/hr, "
        "kmh, kph, m/s, mi/h, mi/hr, mph, mps",
        "config.csv[0]: crs 'EPSG:999999' is not a coordinate reference system PROJ knows "
        "(give an EPSG code such as EPSG:27700)"]
    assert read_gmns(gmns(config="crs\nEPSG:4326\n")).links


# Three nodes in UTM zone 33N (EPSG:32633) near 15°E 52°N, 1 km apart; the points WGS84 puts
# them at (PROJ's own figures, to about 1e-9 degrees).
UTM_NODES = "node_id,x_coord,y_coord\n1,500000,5761038.2\n2,501000,5761038.2\n3,501000,5762038.2\n"
UTM_LINE = "LINESTRING (500000 5761038.2, 500500 5761138.2, 501000 5761038.2)"


def test_projected_coordinates_are_reprojected_to_wgs84() -> None:
    """decision 0718: config.csv's crs, or the import's crs when config.csv names none."""
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    for network in (read_gmns(gmns({"geometry": UTM_LINE}, nodes=UTM_NODES,
                                   config="crs\nEPSG:32633\n")),
                    read_gmns(gmns({"geometry": UTM_LINE}, nodes=UTM_NODES), crs="32633")):
        node_2 = next(n for n in network.nodes if n.id == 2)
        assert (node_2.x, node_2.y) == pytest.approx(to_wgs84.transform(501000, 5761038.2),
                                                     abs=1e-9)
        assert 14.9 < node_2.x < 15.1 and 51.9 < node_2.y < 52.1
        (link,) = network.links
        assert link.geometry[1] == pytest.approx(to_wgs84.transform(500500, 5761138.2),
                                                 abs=1e-9)
        assert link.length == 1.5  # the file's length: km, whatever the CRS


def test_a_crs_given_beside_another_in_config_is_refused() -> None:
    files = gmns(nodes=UTM_NODES, config="crs\nEPSG:32633\n")
    assert refused(files, crs="EPSG:27700") == [
        "config.csv[0]: crs 'EPSG:32633' is not the crs given (EPSG:27700): leave crs out to "
        "use config.csv's"]
    assert read_gmns(files, crs="EPSG:32633").nodes  # the same CRS, said twice


def test_projected_coordinates_without_a_crs_are_refused_by_the_domain() -> None:
    network = read_gmns(gmns(nodes=UTM_NODES))
    assert any("outside WGS84" in problem for problem in network.problems())


def test_a_line_drawn_from_its_to_node_is_turned_round() -> None:
    """GMNS dir_flag -1: the shape points run from the to_node to the from_node."""
    (link,) = read_gmns(gmns({"geometry": "LINESTRING (0.01 0, 0.005 0.001, 0 0)",
                              "dir_flag": "-1"})).links
    assert link.geometry == ((0.0, 0.0), (0.005, 0.001), (0.01, 0.0))


def test_a_line_that_does_not_join_its_nodes_is_refused() -> None:
    assert refused(gmns({"geometry": "LINESTRING (0 0, 0.02 0)"})) == [
        "link.csv[0]: the line does not join its nodes: its last position is 1112.0 m from its "
        "to_node 2 (at most 1 m; node.csv places the nodes)"]


def test_the_link_type_names_give_the_numbers_an_osm_import_gives() -> None:
    """One table of names for GMNS, GeoJSON and GeoPackage imports (domain.rules), equal to
    the OSM importer's own road classes, so a truck ban on link type 1 means motorways in
    both."""
    from adapters.gis.osm_tags import ROAD_CLASSES
    from domain.rules import LINK_TYPE_NAMES

    assert {name: road.link_type for name, road in ROAD_CLASSES.items()} == {
        name: LINK_TYPE_NAMES[name] for name in ROAD_CLASSES}
