"""A scenario's demand matrix: zones checked by id, a new version, forks carry it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from adapters.demand_matrix import upload
from domain.application import Cartolog
from domain.errors import InvalidCommand, InvalidTransition, NotFound
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import ME, tiny_network

GOOD = b"origin,destination,trips\n1,2,30\n2,1,10\n"


@pytest.fixture()
def blobs() -> InMemoryBlobStore:
    return InMemoryBlobStore()


@pytest.fixture()
def app(blobs: InMemoryBlobStore) -> Iterator[Cartolog]:
    application = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"}, blobs=blobs)
    application.register_tenant("acme", ME)
    application.register_tenant("rival", ME)
    yield application
    application.close()


def scenario(app: Cartolog) -> uuid.UUID:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), ME)
    return app.create_scenario("acme", dataset, "base", ME)


def test_a_matrix_is_a_new_version_named_by_its_blob(app: Cartolog) -> None:
    scenario_id = scenario(app)
    version = app.set_demand_matrix("acme", scenario_id, 1, upload(GOOD, "csv"), ME)
    assert version == 2
    matrix = app.get_scenario("acme", scenario_id).demand_matrix
    assert matrix is not None
    assert matrix["classes"] == {"all": 40.0} and matrix["zone_count"] == 2
    assert app.demand_matrix_content("acme", scenario_id) == upload(GOOD, "csv").content
    assert app.get_scenario("acme", scenario_id, 1).demand_matrix is None


def test_unknown_zones_are_each_reported_and_nothing_is_stored(
        app: Cartolog, blobs: InMemoryBlobStore) -> None:
    scenario_id = scenario(app)
    stored = dict(blobs.blobs)
    bad = upload(b"origin,destination,trips\n1,7,3\n9,2,1\n", "csv")
    with pytest.raises(InvalidCommand) as error:
        app.set_demand_matrix("acme", scenario_id, 1, bad, ME)
    assert error.value.problems == ["unknown zone 7", "unknown zone 9",
                                    "the matrix has 4 zones, the network 2"]
    assert blobs.blobs == stored
    assert app.get_scenario("acme", scenario_id).version == 1


def test_a_fork_carries_the_matrix_and_replacing_it_leaves_the_source_alone(
        app: Cartolog) -> None:
    source = scenario(app)
    app.set_demand_matrix("acme", source, 1, upload(GOOD, "csv"), ME)
    fork = app.fork_scenario("acme", source, "fork", ME)
    assert app.get_scenario("acme", fork).demand_matrix == \
        app.get_scenario("acme", source).demand_matrix
    other = upload(b"origin,destination,trips\n1,2,5\n", "csv")
    app.set_demand_matrix("acme", fork, 1, other, ME)
    assert app.demand_matrix_content("acme", fork) == other.content
    assert app.demand_matrix_content("acme", source) == upload(GOOD, "csv").content


def test_removing_the_matrix_returns_to_the_gravity_model(app: Cartolog) -> None:
    scenario_id = scenario(app)
    with pytest.raises(InvalidTransition):
        app.remove_demand_matrix("acme", scenario_id, 1, ME)
    app.set_demand_matrix("acme", scenario_id, 1, upload(GOOD, "csv"), ME)
    assert app.remove_demand_matrix("acme", scenario_id, 2, ME) == 3
    assert app.get_scenario("acme", scenario_id).demand_matrix is None
    with pytest.raises(NotFound):
        app.demand_matrix_content("acme", scenario_id)


def test_another_tenant_cannot_set_or_read_the_matrix(app: Cartolog) -> None:
    scenario_id = scenario(app)
    app.set_demand_matrix("acme", scenario_id, 1, upload(GOOD, "csv"), ME)
    with pytest.raises(NotFound):
        app.set_demand_matrix("rival", scenario_id, 2, upload(GOOD, "csv"), ME)
    with pytest.raises(NotFound):
        app.demand_matrix_content("rival", scenario_id)


def test_the_worker_input_uses_the_matrix_instead_of_the_gravity_model() -> None:
    from adapters.demand_matrix import DemandMatrix
    from simulation_worker.model import ExplicitDemand, GravityDemand
    from simulation_worker.model_input import build, with_matrix

    run_input = build(tiny_network(), {"demand": None}, {})
    assert isinstance(run_input.model.demand, GravityDemand)
    matrix = DemandMatrix.from_blob(upload(GOOD, "csv").content)
    demand = with_matrix(run_input, matrix).model.demand
    assert isinstance(demand, ExplicitDemand)
    assert demand.trips.tolist() == [[0.0, 30.0], [10.0, 0.0]]


def test_declared_classes_are_a_new_version_and_forks_carry_them(app: Cartolog) -> None:
    from domain.demand import VehicleClassSpec

    scenario_id = scenario(app)
    truck = VehicleClassSpec("truck", pce=2.5, allowed_link_types=(2, 1, 2))
    assert app.declare_vehicle_classes("acme", scenario_id, 1,
                                       [VehicleClassSpec("car"), truck], ME) == 2
    declared = app.get_scenario("acme", scenario_id).vehicle_classes
    assert [c["name"] for c in declared] == ["car", "truck"]
    assert declared[1]["allowed_link_types"] == [1, 2] and declared[1]["pce"] == 2.5
    fork = app.fork_scenario("acme", scenario_id, "fork", ME)
    assert app.get_scenario("acme", fork).vehicle_classes == declared
    with pytest.raises(InvalidCommand) as error:
        app.declare_vehicle_classes("acme", scenario_id, 2,
                                    [VehicleClassSpec("bus", allowed_link_types=())], ME)
    assert error.value.problems == ["class 'bus': allow at least one link type (or omit the list)"]
    assert app.get_scenario("acme", scenario_id).version == 2


def test_a_matrix_of_more_than_ten_classes_is_refused_before_its_blob_is_stored(
        app: Cartolog, blobs: InMemoryBlobStore) -> None:
    from domain.demand import DemandMatrixUpload

    scenario_id = scenario(app)
    stored = len(blobs.blobs)
    many = DemandMatrixUpload((1, 2), {f"class {k}": 1.0 for k in range(350_000)}, b"x", "csv")
    with pytest.raises(InvalidCommand) as error:
        app.set_demand_matrix("acme", scenario_id, 1, many, ME)
    assert error.value.problems == ["the matrix has 350000 classes, at most 10 are allowed"]
    assert len(blobs.blobs) == stored
    assert app.get_scenario("acme", scenario_id).version == 1


def test_an_event_too_large_for_the_relay_is_refused_and_nothing_is_saved(
        app: Cartolog, monkeypatch: pytest.MonkeyPatch) -> None:
    from domain import rules

    scenario_id = scenario(app)
    monkeypatch.setattr(rules, "MAX_EVENT_BYTES", 100)
    with pytest.raises(InvalidCommand, match=r"DemandMatrixSet event would be \d+ bytes, at "
                                             r"most 100 are allowed; nothing was recorded"):
        app.set_demand_matrix("acme", scenario_id, 1, upload(GOOD, "csv"), ME)
    assert app.get_scenario("acme", scenario_id).version == 1
    assert app.get_scenario("acme", scenario_id).demand_matrix is None


def test_every_event_the_store_accepts_fits_in_one_kafka_record() -> None:
    from adapters.kafka import MAX_REQUEST_SIZE
    from adapters.relay import RECORD_OVERHEAD
    from domain.rules import MAX_EVENT_BYTES

    # The envelope re-encodes the stored JSON with a few header fields: leave it room.
    assert 2 * MAX_EVENT_BYTES + RECORD_OVERHEAD <= MAX_REQUEST_SIZE


@pytest.mark.parametrize("links", [5, True, 3.5, "a", {"a": 1}])
def test_select_links_whose_links_are_not_a_list_are_a_problem_not_a_crash(
        links: object) -> None:
    from domain.demand import select_link_problems

    problems = select_link_problems([{"name": "s", "links": links}], lambda link: True)
    assert problems == ["select_links 's': name at least one link"]


@pytest.mark.parametrize(("matrix", "declared", "problems"), [
    (b"origin,destination,trips,class\n1,2,30,car\n2,1,10,truck\n", ["car"],
     ["the demand matrix's class 'truck' is not a declared vehicle class (declared: car); "
      "its trips would be dropped"]),
    (b"origin,destination,trips,class\n1,2,30,bus\n", ["car", "truck"],
     ["vehicle class 'car' has no trips in the demand matrix (its classes: bus)",
      "vehicle class 'truck' has no trips in the demand matrix (its classes: bus)",
      "the demand matrix's class 'bus' is not a declared vehicle class (declared: car, truck); "
      "its trips would be dropped"]),
])
def test_a_run_whose_matrix_classes_differ_from_the_declared_ones_is_refused(
        app: Cartolog, matrix: bytes, declared: list[str], problems: list[str]) -> None:
    from domain.demand import VehicleClassSpec

    scenario_id = scenario(app)
    app.declare_vehicle_classes("acme", scenario_id, 1,
                                [VehicleClassSpec(name) for name in declared], ME)
    app.set_demand_matrix("acme", scenario_id, 2, upload(matrix, "csv"), ME)
    with pytest.raises(InvalidCommand) as error:
        app.request_simulation("acme", scenario_id, "builtin", {}, ME)
    assert error.value.problems == problems


def test_a_run_of_an_earlier_version_is_checked_against_that_versions_classes(
        app: Cartolog) -> None:
    from domain.demand import VehicleClassSpec

    scenario_id = scenario(app)
    app.declare_vehicle_classes("acme", scenario_id, 1, [VehicleClassSpec("car")], ME)
    app.set_demand_matrix("acme", scenario_id, 2, upload(b"origin,destination,trips,class\n"
                                                         b"1,2,30,bus\n", "csv"), ME)
    app.set_demand_matrix("acme", scenario_id, 3, upload(b"origin,destination,trips,class\n"
                                                         b"1,2,30,car\n", "csv"), ME)
    assert app.request_simulation("acme", scenario_id, "builtin", {}, ME)
    with pytest.raises(InvalidCommand, match="does not match the vehicle classes"):
        app.request_simulation("acme", scenario_id, "builtin", {}, ME, scenario_version=3)


@pytest.mark.parametrize(("spec", "problem"), [
    ({"pce": 1e308}, "class 'car': pce must be at most 1e+12"),
    ({"value_of_time": 2e12}, "class 'car': value_of_time must be at most 1e+12"),
    ({"toll_factor": True}, "class 'car': toll_factor must be a number"),
    ({"pce": "1"}, "class 'car': pce must be a number"),
    ({"allowed_link_types": (1, 2**70)},
     "class 'car': link type must be between 0 and 2147483647"),
    ({"allowed_link_types": (-1,)}, "class 'car': link type must be between 0 and 2147483647"),
    ({"allowed_link_types": tuple(range(101))}, "class 'car': at most 100 link types"),
])
def test_vehicle_class_numbers_are_capped_like_every_other_number(
        spec: dict[str, object], problem: str) -> None:
    from domain.demand import VehicleClassSpec, class_problems

    assert class_problems([VehicleClassSpec("car", **spec)]) == [problem]  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [{"name": "car", "pce": True}, {"name": "car", "pce": "1"},
                                  {"name": "car", "allowed_link_types": [1.0]},
                                  {"name": 7}])
def test_the_vehicle_class_schema_refuses_values_of_the_wrong_json_type(
        body: dict[str, object]) -> None:
    from pydantic import ValidationError

    from api.schemas import VehicleClassCreate

    with pytest.raises(ValidationError):
        VehicleClassCreate.model_validate(body)
    assert VehicleClassCreate.model_validate({"name": "car", "pce": 2}).pce == 2.0
