"""One definition of valid input: the domain's rules, and every door applying the same ones."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.gis.exports import export_scenario
from adapters.gis.tables import links_table
from api.geojson_import import parse_network
from domain import rules
from domain.application import Cartolog
from domain.edits import AddLink, ChangeDemandParameters, ModifyLink, SetZoneAttributes
from domain.errors import InvalidCommand
from domain.values import Actor, Link, Network, Node, Zone
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import ME, tiny_network

HOSTILE_TEXT = ["nul\x00link", "bell\x07", "line\nbreak", "tab\tbed", "\ud800lone", "x" * 10_000,
                "", "   ", "\x7f", "\u200e\x9b", "\u200b", "ok\u202e", "\ufeffname",
                "soft\u00adhyphen", "\u200d"]


@pytest.fixture()
def app() -> Iterator[Cartolog]:
    application = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           blobs=InMemoryBlobStore())
    application.register_tenant("acme", ME)
    yield application
    application.close()


def stored(app: Cartolog) -> int:
    return len(app.recorder.select_notifications(start=None, limit=100_000))


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_text_postgresql_cannot_store_or_a_reader_cannot_see_is_refused(text: str) -> None:
    assert rules.text_problem("a name", text, rules.MAX_NAME) is not None
    assert rules.id_problem("an id", text) is not None


@pytest.mark.parametrize("text", ["Zürich Süd", "東京 → 大阪", "a" * 100, "link-7/b",
                                  # Persian, a zero-width non-joiner inside (escaped for ruff)
                                  "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
                                  "👩\u200d🔧 crew"])
def test_printable_text_of_any_script_is_accepted(text: str) -> None:
    assert rules.text_problem("a name", text) is None and rules.id_problem("an id", text) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, 1e13, -1e300, True,
                                   "5", None])
def test_numbers_must_be_finite_non_negative_and_bounded(value: Any) -> None:
    assert rules.number_problem("capacity", value) is not None


def test_positive_means_above_zero() -> None:
    assert rules.number_problem("capacity", 0.0, positive=True) is not None
    assert rules.number_problem("capacity", 0.0) is None
    assert rules.number_problem("capacity", 1e12, positive=True) is None


@pytest.mark.parametrize("position", [(999, 999), (1e300, 1e300), (-180.5, 0), (0, 90.01),
                                      (math.nan, 0), (0, math.inf), (1,), ("1", "2"),
                                      (True, 0)])
def test_positions_must_be_wgs84(position: Any) -> None:
    assert rules.coordinate_problem("p", position) is not None


def test_the_corners_of_wgs84_are_positions() -> None:
    assert all(rules.coordinate_problem("p", c) is None
               for c in [(-180, -90), (180, 90), (0.0, 0.0), (13.4, 52.5)])


@pytest.mark.parametrize("parameters", [
    {"gap": math.nan}, {"max_iterations": math.inf}, {"note": "a\x00b"}, {"a\x00": 1},
    {"nested": {"deeper": [math.nan]}}, {"x": 2**60}, {f"k{i}": i for i in range(51)},
    {"deep": [[[[[1]]]]]}, {"gap": 2.0}, {"gap": 0}, {"max_iterations": -1},
    {"max_iter": 1.5}, {"algorithm": "magic"}, {"reuse": "yes"}, {"big": "x" * 1001},
    {"accessibility_minutes": -5}, {"list": list(range(101))}, {"obj": object()},
    {"unreachable_demand": "skip"}, {"unreachable_demand": True},
])
def test_builtin_simulation_parameters_are_refused(parameters: dict[str, Any]) -> None:
    assert rules.parameters_problems("builtin", parameters)


def test_known_and_free_parameters_are_accepted() -> None:
    good = {"gap": 1e-4, "max_iterations": 50, "algorithm": "bfw", "reuse": False,
            "accessibility_minutes": 20, "note": "run for the council", "tags": ["a", 1, None],
            "unreachable_demand": "drop"}
    assert rules.parameters_problems("builtin", good) == []
    assert rules.parameters_problems("external", {"gap": 5, "mode": "x"}) == []


BAD_LINK = Link("bad\x00id", 1, 42, -1.0, math.nan, 1.0, lanes=0.0, link_type=-3,
                geometry=((999.0, 999.0), (0.0, 0.0)))
BAD_LINK_PROBLEMS = {"id must not contain control characters", "unknown node 42",
                     "capacity must be a finite, positive", "lanes must be a finite, positive",
                     "length must be a finite, non-negative", "link_type must be between",
                     "outside WGS84"}


def _covers(problems: list[str], expected: set[str]) -> set[str]:
    return {e for e in expected if not any(e in p for p in problems)}


def test_every_broken_rule_of_a_link_is_listed_by_import_and_edit_alike(app: Cartolog) -> None:
    with pytest.raises(InvalidCommand) as by_import:
        app.import_dataset("acme", "bad", Network((*tiny_network().nodes,), (BAD_LINK,), ()),
                           ME)
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.create_scenario("acme", dataset, "base", ME)
    before = stored(app)
    with pytest.raises(InvalidCommand) as by_edit:
        app.edit_scenario("acme", scenario, 1, [AddLink(BAD_LINK)], ME)
    assert _covers(by_import.value.problems, BAD_LINK_PROBLEMS) == set()
    assert _covers(by_edit.value.problems, BAD_LINK_PROBLEMS) == set()
    assert stored(app) == before


def test_geojson_import_lists_the_domain_problems_by_feature() -> None:
    feature = {"type": "Feature", "properties": {
        "id": "bad\x00id", "from_node": 1, "to_node": 2, "capacity": -1, "length": 1,
        "free_flow_time": 1, "lanes": 0.5, "link_type": 2**40},
        "geometry": {"type": "LineString", "coordinates": [[0, 0], [0.1, 0.1]]}}
    twin = {**feature, "properties": {**feature["properties"], "id": "twin", "capacity": 1,
                                      "link_type": 1, "lanes": 1}}
    zero = {**twin, "properties": {**twin["properties"], "from_node": 0}}
    network, problems = parse_network(
        {"type": "FeatureCollection", "features": [feature, twin, twin, zero]},
        {"type": "FeatureCollection", "features": []}, 1, 10)
    texts = [str(p) for p in problems]
    assert network is None
    assert texts == ["links[0]: property 'link_type' must be between 0 and 2147483647",
                     "links[3]: property 'from_node' must be between 1 and 2147483647"]
    network, problems = parse_network(
        {"type": "FeatureCollection", "features": [twin, twin]},
        {"type": "FeatureCollection", "features": []}, 1, 10)
    assert [str(p) for p in problems] == ["links[1]: duplicate id 'twin'"]


@pytest.mark.parametrize("edit", [
    SetZoneAttributes(1, population=math.nan), SetZoneAttributes(1, jobs=math.inf),
    SetZoneAttributes(1, population=1e13), ModifyLink("a", capacity=-math.inf),
    ModifyLink("a", lanes=0.0), ModifyLink("a", toll=math.nan),
    ChangeDemandParameters(trip_rate=math.nan), ChangeDemandParameters(beta=-1.0),
])
def test_every_edit_refuses_non_finite_and_out_of_range_numbers(app: Cartolog,
                                                                edit: Any) -> None:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.create_scenario("acme", dataset, "base", ME)
    before = stored(app)
    with pytest.raises(InvalidCommand):
        app.edit_scenario("acme", scenario, 1, [edit], ME)
    assert stored(app) == before


@pytest.mark.parametrize("network", [
    Network((Node(1, 999.0, 0.0), Node(2)), (Link("a", 1, 2, 1.0, 1.0, 1.0),), ()),
    Network((Node(1), Node(2**31)), (Link("a", 1, 2**31, 1.0, 1.0, 1.0),), ()),
    Network((Node(1), Node(2)), (), (Zone(1, 1, math.nan, 0.0),)),
    Network((Node(1), Node(2)), (), (Zone(1, 1, 1.0, 0.0, (((0.0, 0.0), (500.0, 0.0),
                                                           (0.0, 1.0), (0.0, 0.0)),)),)),
    Network((Node(1), Node(2)), (), (Zone(1, 1),), od_matrix=((1, 1, math.inf),)),
    Network((Node(1), Node(2)), (), (Zone(1, 1),), od_matrix=((1, 7, 1.0),)),
    Network((Node(1), Node(2)), (), (), first_thru_node=0),
])
def test_a_network_breaking_any_rule_is_not_imported(app: Cartolog, network: Network) -> None:
    before = stored(app)
    with pytest.raises(InvalidCommand):
        app.import_dataset("acme", "bad", network, ME)
    assert stored(app) == before


@pytest.mark.parametrize("name", ["nul\x00", "x" * 201, " ", "new\nline"])
def test_names_of_datasets_scenarios_bi_targets_and_tenants_refuse_bad_text(
        app: Cartolog, name: str) -> None:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    before = stored(app)
    commands = [lambda: app.import_dataset("acme", name, tiny_network(), ME),
                lambda: app.create_scenario("acme", dataset, name, ME),
                lambda: app.register_bi_target("acme", name, "builtin", ME),
                lambda: app.register_tenant("other", ME, name)]
    for command in commands:
        with pytest.raises(InvalidCommand):
            command()
    assert stored(app) == before


@pytest.mark.parametrize("tenant", ["acme\n", "Acme", "a" * 64, "-acme", "ac\x00me"])
def test_tenant_names_are_whole_dns_labels(app: Cartolog, tenant: str) -> None:
    with pytest.raises(InvalidCommand):
        app.register_tenant(tenant, ME)


def test_a_simulation_request_with_hostile_parameters_stores_nothing(app: Cartolog) -> None:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.create_scenario("acme", dataset, "base", ME)
    before = stored(app)
    for parameters in ({"gap": math.nan}, {"max_iterations": math.inf}, {"n\x00": 1}):
        with pytest.raises(InvalidCommand):
            app.request_simulation("acme", scenario, "builtin", parameters, ME)
    with pytest.raises(InvalidCommand):
        app.request_simulation("acme", scenario, "builtin", {}, ME, idempotency_key="k\x00")
    with pytest.raises(InvalidCommand):
        app.fork_scenario("acme", scenario, "fork", ME, at_version=2**70)
    assert stored(app) == before


def test_an_actor_cannot_carry_nul() -> None:
    with pytest.raises(InvalidCommand):
        Actor("editor\x00@acme")
    with pytest.raises(InvalidCommand):
        Actor("editor@acme", correlation_id="c\x00")
    assert Actor("editor@acme").sub == "editor@acme"


def test_replaying_a_scenario_never_applies_the_rules(app: Cartolog) -> None:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.get_scenario("acme", app.create_scenario("acme", dataset, "base", ME))
    scenario._emit(type(scenario).LinkAdded, ME, link={**BAD_LINK.__dict__, "geometry": []})
    app.save(scenario)
    replayed: Any = None
    for event in app.repository.event_store.get(scenario.id):
        replayed = event.mutate(replayed)
    assert replayed.added_links["bad\x00id"]["to_node"] == 42
    assert replayed.version == scenario.version == 2


def test_an_optional_geojson_property_given_as_null_takes_its_default() -> None:
    feature = {"type": "Feature", "properties": {
        "id": "a", "from_node": 1, "to_node": 2, "capacity": 10, "length": 1,
        "free_flow_time": 1, "lanes": None, "b": None, "power": None, "toll": None},
        "geometry": {"type": "LineString", "coordinates": [[0, 0], [0.1, 0.1]]}}
    network, problems = parse_network({"type": "FeatureCollection", "features": [feature]},
                                      {"type": "FeatureCollection", "features": []}, 1, 10)
    assert problems == [] and network is not None
    link = network.links[0]
    assert (link.lanes, link.b, link.power, link.toll) == (1.0, 0.15, 4.0, 0.0)


@pytest.mark.parametrize("name", ["car", "HGV 3-axle", "bus_lane", "Lkw", "a-or-b"])
def test_a_class_or_selection_name_may_be_letters_digits_and_inner_separators(
        name: str) -> None:
    assert rules.key_name_problem("a class name", name) is None


@pytest.mark.parametrize(("name", "reason"), [
    ("a/b", "may hold only letters, digits"), (".", "may hold only letters, digits"),
    ("..", "may hold only letters, digits"), ("car.v2", "may hold only letters, digits"),
    (" car", "must not start or end with a space"), ("x" * 65, "1 to 64 characters"),
    ("", "1 to 64 characters"), (7, "must be text"), ("nul\x00", "control characters"),
    ("_v_x", "must not start with '_v_'"), ("_c_trucks", "must not start with '_c_'"),
    ("_v", "must not start with '_v_'"),
])
def test_a_class_or_selection_name_that_breaks_files_or_urls_is_refused(
        name: object, reason: str) -> None:
    problem = rules.key_name_problem("a class name", name)
    assert problem is not None and reason in problem


def test_every_door_naming_a_class_or_selection_applies_the_same_name_rule(
        app: Cartolog) -> None:
    from adapters.demand_matrix import upload
    from domain.demand import VehicleClassSpec, select_link_problems

    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario_id = app.create_scenario("acme", dataset, "base", ME)
    bad = "may hold only letters, digits, '_', '-' and inner spaces"
    matrix = upload(b"origin,destination,trips,class\n1,2,3,a/b\n2,1,1,..\n", "csv")
    with pytest.raises(InvalidCommand) as refused:
        app.set_demand_matrix("acme", scenario_id, 1, matrix, ME)
    assert refused.value.problems == [f"a class name '..' {bad}", f"a class name 'a/b' {bad}"]
    with pytest.raises(InvalidCommand) as declared:
        app.declare_vehicle_classes("acme", scenario_id, 1, [VehicleClassSpec("a/b")], ME)
    assert declared.value.problems == [f"a class name 'a/b' {bad}"]
    assert select_link_problems([{"name": ".", "links": ["a"]}], lambda link: True) == [
        f"select_links: a selection name '.' {bad}"]
    assert app.get_scenario("acme", scenario_id).version == 1


def test_a_line_of_one_position_is_refused_by_import_and_edit(app: Cartolog) -> None:
    lonely = Link("p", 1, 2, 100.0, 1.0, 1.0, geometry=((0.0, 0.0),))
    with pytest.raises(InvalidCommand, match="rejected") as by_import:
        app.import_dataset("acme", "bad", Network(tiny_network().nodes, (lonely,), ()), ME)
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    scenario = app.create_scenario("acme", dataset, "base", ME)
    with pytest.raises(InvalidCommand) as by_edit:
        app.edit_scenario("acme", scenario, 1, [AddLink(lonely)], ME)
    for refused in (by_import, by_edit):
        assert any("a line needs at least 2 positions" in p for p in refused.value.problems)


def test_a_stored_line_of_one_position_exports_between_its_nodes(tmp_path: Path) -> None:
    """An edit recorded before the rule (events replay as they are): export still works."""
    network = tiny_network()
    lonely = Link("p", 1, 2, 100.0, 1.0, 1.0, geometry=((0.0, 0.0),))
    network = Network(network.nodes, (*network.links, lonely), network.zones)
    for fmt in ("gpkg", "geojson", "gmns"):
        exported = export_scenario(network, "s", fmt, tmp_path)
        assert exported.path.stat().st_size > 0
    table = links_table(network.links, network)
    shape = table.geometries[-1]
    assert shape is not None and list(shape.coords) == [(0.0, 0.0), (0.01, 0.0)]


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1.0), (" -2.5 ", -2.5), ("+.5", 0.5), ("3.", 3.0), ("1e3", 1000.0), ("\t7E-1", 0.7),
    ("1_0", None), ("\uff11", None), ("\u0663", None), ("nan", None), ("inf", None),
    ("infinity", None), ("0x10", None), ("", None), (".", None), ("1e", None),
    ("1\u00a0", None), ("1 2", None),
])
def test_decimal_reads_only_plain_decimal_text(text: str, value: float | None) -> None:
    assert rules.decimal(text) == value


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12), (" -3 ", -3), ("+4", 4), ("1_0", None), ("\uff11", None), ("1.0", None),
    ("1e2", None), ("9" * 31, None), ("", None),
])
def test_whole_number_reads_only_ascii_digits(text: str, value: int | None) -> None:
    assert rules.whole_number(text) == value
