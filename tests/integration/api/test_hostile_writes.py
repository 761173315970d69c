"""Property test: every write endpoint, driven with hostile values (NaN, ±Infinity, NUL and
other control characters, 10k-character strings, huge or negative numbers, positions off
the globe), answers a 4xx problem and stores nothing, or succeeds, and the read model then
still serves every tenant. Never a 5xx, a dead projector or a stuck projection. Real
PostGIS, real broker, relay and projector running."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from infra.wiring import Container
from tests.integration.api.conftest import Api, tiny_geojson
from tests.integration.conftest import stored_events
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

EXAMPLES = 300
TEXTS = st.one_of(
    st.sampled_from(["nul\x00x", "\x00", "bell\x07", "tab\t", "new\nline", "\ud800", "\x7f",
                     "\u009b", "x" * 10_000, "", "   ", "ok", "a", "b", "Zürich"]),
    st.text(max_size=12))
NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e13, 1e12, -1.0, 0.0,
                     2**31, 2**53 + 1, 2**63, 10**30, -(2**31) - 1, 5e-324]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "nan"]),
    st.floats(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=0.001, max_value=1000))
INTEGERS = st.one_of(st.sampled_from([1, 2, 3]), st.integers(-(2**70), 2**70), NUMBERS)
POSITIONS = st.lists(st.one_of(
    st.floats(min_value=-180, max_value=180), st.sampled_from([999.0, -181.0, 90.5, 1e300]),
    NUMBERS), min_size=2, max_size=2)
VALUES = st.one_of(NUMBERS, TEXTS, POSITIONS, st.none(), st.booleans())
LINKS = ("a", "b", "c")


@dataclass
class World:
    """Ids the examples write to: acme's own, and rival's (acme must never reach them)."""

    dataset: str
    scenario: str
    rival_scenario: str
    rival_run: str
    target: str
    archivable: str
    fork: str
    merge_request: str


def encode(body: Any) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity as bare literals."""
    return json.dumps(body, allow_nan=True).encode()


def maybe(valid: Any, hostile: st.SearchStrategy[Any] = VALUES) -> st.SearchStrategy[Any]:
    """The valid value half of the time, a hostile one otherwise."""
    return st.one_of(st.just(valid), hostile)


def spoilt(template: dict[str, Any], keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """The template, or the template with one of `keys` set to a hostile value."""
    def spoil(key: str, value: Any) -> dict[str, Any]:
        return {**template, key: value}
    return st.one_of(st.just(template), st.builds(spoil, st.sampled_from(keys), VALUES))


def edit_bodies() -> st.SearchStrategy[dict[str, Any]]:
    def add(link_id: str, link: dict[str, Any]) -> dict[str, Any]:
        return {"op": "add_link", "link": {"id": link_id, **link}}
    link = spoilt({"from_node": 1, "to_node": 3, "capacity": 10.0, "length": 1.0,
                   "free_flow_time": 1.0, "lanes": 1.0, "link_type": 1,
                   "geometry": [[0.0, 0.0], [0.01, 0.01]]},
                  ("from_node", "to_node", "capacity", "length", "free_flow_time", "lanes",
                   "link_type", "geometry", "b", "power", "toll"))
    return st.one_of(
        st.builds(add, st.one_of(st.uuids().map(str), TEXTS), link),
        st.builds(lambda e: {"op": "modify_link", **e}, spoilt(
            {"link_id": "a", "capacity": 900.0},
            ("link_id", "capacity", "free_flow_time", "speed", "lanes", "toll"))),
        st.builds(lambda k: {"op": "close_link", "link_id": k},
                  st.one_of(st.sampled_from(LINKS), TEXTS)),
        st.builds(lambda e: {"op": "set_zone_attributes", **e}, spoilt(
            {"zone_id": 1, "population": 50.0, "jobs": 5.0}, ("zone_id", "population", "jobs"))),
        st.builds(lambda e: {"op": "change_demand_parameters", **e}, spoilt(
            {"trip_rate": 1.5, "beta": 0.2, "deterrence": "power"},
            ("trip_rate", "beta", "deterrence"))))


def geojson_bodies() -> st.SearchStrategy[dict[str, Any]]:
    def spoil(name: str, where: tuple[str, int, str], value: Any) -> dict[str, Any]:
        body = tiny_geojson(name)
        collection, index, key = where
        feature = body[collection]["features"][index]
        if key == "coordinates":
            feature["geometry"]["coordinates"][0] = value
        elif key != "none":
            feature["properties"][key] = value
        return body
    spots = st.sampled_from([("links", 0, "capacity"), ("links", 1, "length"),
                             ("links", 2, "from_node"), ("links", 0, "id"),
                             ("links", 1, "coordinates"), ("links", 2, "lanes"),
                             ("links", 0, "link_type"), ("zones", 0, "population"),
                             ("zones", 1, "id"), ("zones", 0, "centroid_node"),
                             ("links", 0, "none")])
    return st.builds(spoil, maybe("tiny", TEXTS), spots, VALUES)


def tntp_bodies() -> st.SearchStrategy[dict[str, Any]]:
    tokens = st.sampled_from(["nan", "inf", "-1", "1e999", "\x00", "99999999999", "x" * 10_000,
                              "0", "2.5", "NaN", "999"])
    net = ("<NUMBER OF NODES> 3\n<FIRST THRU NODE> 1\n<END OF METADATA>\n"
           "1 2 1000 1 1 0.15 4 0 0 1 ;\n2 3 1000 1 1 0.15 4 0 0 1 ;\n"
           "1 3 500 2 3 0.15 4 0 0 1 ;\n")
    trips = "<NUMBER OF ZONES> 2\n<END OF METADATA>\nOrigin 1\n 2 : 30.0;\nOrigin 2\n 1 : 10.0;\n"

    def spoil(name: str, in_net: bool, field: int, token: str | None) -> dict[str, Any]:
        words = (net if in_net else trips).split(" ")
        if token is not None:
            words[field % len(words)] = token
        spoiled = " ".join(words)
        return {"format": "tntp", "name": name, "net": spoiled if in_net else net,
                "trips": trips if in_net else spoiled}
    return st.builds(spoil, maybe("t", TEXTS), st.booleans(), st.integers(0, 60),
                     st.one_of(st.none(), tokens))


def demand_files() -> st.SearchStrategy[tuple[str, bytes]]:
    """(format, file): CSV matrices with hostile cells, or bytes that are no OMX at all."""
    cells = st.one_of(st.sampled_from(["1", "2", "3", "99", "-5", "0", "nan", "inf", "-inf",
                                       "1e999", "\x00", "x" * 10_000, "", "Zürich", "2.5",
                                       "99999999999999999999", "car", "truck"]),
                      TEXTS.filter(lambda t: "\n" not in t and "," not in t))
    rows = st.lists(st.lists(cells, min_size=2, max_size=4).map(",".join), min_size=0,
                    max_size=3)
    header = st.sampled_from(["origin,destination,trips", "origin,destination,trips,class",
                              "o,d,t", ""])
    csv = st.builds(lambda h, r: ("csv", "\n".join([h, *r]).encode("utf-8", "surrogatepass")),
                    header, rows)
    omx = st.builds(lambda b: ("omx", b), st.one_of(
        st.binary(max_size=64), st.just(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)))
    valid = st.just(("csv", b"origin,destination,trips\n1,2,30\n2,1,10.5\n"))
    return st.one_of(valid, csv, omx)


def class_bodies() -> st.SearchStrategy[dict[str, Any]]:
    car = {"name": "car", "pce": 1.0, "value_of_time": 10.0, "toll_factor": 1.0,
           "distance_factor": 0.0, "allowed_link_types": None}
    truck = {**car, "name": "truck", "pce": 2.5, "allowed_link_types": [1]}
    keys = ("name", "pce", "value_of_time", "toll_factor", "distance_factor",
            "allowed_link_types")
    return st.builds(lambda a, b: {"classes": [a, b]}, spoilt(car, keys), spoilt(truck, keys))


def requests(world: World) -> st.SearchStrategy[tuple[str, str, Any, dict[str, str]]]:
    """(method, path, body, extra headers) for every write endpoint."""
    edits = f"/v1/scenarios/{world.scenario}/edits"
    parameters = st.one_of(st.just({"gap": 1e-4, "note": "ok"}), st.dictionaries(
        TEXTS, st.one_of(VALUES, st.dictionaries(TEXTS, VALUES, max_size=3)), max_size=4))
    return st.one_of(
        st.builds(lambda b: ("POST", "/v1/datasets", b, {}), geojson_bodies()),
        st.builds(lambda b: ("POST", "/v1/datasets", b, {}), tntp_bodies()),
        st.builds(lambda n: ("POST", "/v1/scenarios", {"name": n, "dataset_id": world.dataset},
                             {}), maybe("s", TEXTS)),
        st.builds(lambda n, v: ("POST", "/v1/scenarios", {
            "name": n, "fork_of": world.scenario, "fork_version": v}, {}),
            maybe("f", TEXTS), maybe(1, INTEGERS)),
        st.builds(lambda e: ("POST", edits, {"edits": e}, {}),
                  st.lists(edit_bodies(), min_size=1, max_size=2)),
        st.builds(lambda e: ("POST", f"/v1/scenarios/{world.rival_scenario}/edits",
                             {"edits": [e]}, {"If-Match": '"1"'}), edit_bodies()),
        st.builds(lambda m, p, v, k: (
            "POST", f"/v1/scenarios/{world.scenario}/simulations",
            {"model": m, "parameters": p, "scenario_version": v}, {"Idempotency-Key": k}),
            maybe("builtin", st.one_of(st.just("external"), TEXTS)), parameters,
            maybe(None, INTEGERS), st.one_of(st.uuids().map(str),
                                             st.sampled_from(["x" * 300, "é"]))),
        st.builds(lambda n, k, u: ("POST", "/v1/bi/targets", {
            "name": n, "kind": k, "trigger_url": u, "status_url": u}, {}),
            st.one_of(st.uuids().map(str), TEXTS), maybe("builtin"),
            maybe("http://bi.example/x", TEXTS)),
        st.just(("POST", f"/v1/bi/targets/{world.target}/rebuilds", None, {})),
        st.builds(lambda action, reason: (
            "POST", f"/v1/scenarios/{world.archivable}/{action}", {"reason": reason}, {}),
            st.sampled_from(["archive", "restore"]), maybe("done", TEXTS)),
        st.builds(lambda title: ("POST", f"/v1/scenarios/{world.fork}/merge-requests",
                                 {"title": title}, {}), maybe("again", TEXTS)),
        st.builds(lambda verdict, comment: (
            "POST", f"/v1/merge-requests/{world.merge_request}/reviews",
            {"verdict": verdict, "comment": comment}, {}),
            maybe("changes_requested", TEXTS), maybe("please\nchange", TEXTS)),
        st.builds(lambda run: ("DELETE", f"/v1/simulations/{run}", None, {}),
                  st.one_of(st.uuids().map(str), st.just(world.rival_run))),
        st.builds(lambda body: ("PUT", f"/v1/scenarios/{world.scenario}/vehicle-classes",
                                body, {}), class_bodies()),
        st.builds(lambda file: ("POST", f"/v1/scenarios/{world.scenario}/demand?format={file[0]}",
                                file[1], {}), demand_files()),
        st.just(("DELETE", f"/v1/scenarios/{world.scenario}/demand", None, {})),
        st.builds(lambda links, mode, name: (
            "POST", f"/v1/scenarios/{world.scenario}/simulations",
            {"model": "builtin", "parameters": {"select_links": [
                {"name": name, "links": links, "mode": mode}]}}, {}),
            maybe(["a"], st.lists(st.one_of(st.sampled_from(LINKS), TEXTS), max_size=12)),
            maybe("or", TEXTS), maybe("sel", TEXTS)),
        st.builds(lambda subject, take: (
            "POST", f"/v1/merge-requests/{world.merge_request}/resolutions",
            {"subject": subject, "take": take}, {}),
            maybe("link:c", TEXTS), maybe("fork", TEXTS)),
        st.builds(lambda reason: ("POST", f"/v1/merge-requests/{world.merge_request}/close",
                                  {"reason": reason}, {}), maybe("withdrawn", TEXTS)),
    )


def send(api: Api, world: World, method: str, path: str, body: Any,
         headers: dict[str, str]) -> Any:
    extra = dict(headers)
    bare = path.split("?")[0]
    if bare.endswith(("/edits", "/archive", "/restore", "/vehicle-classes", "/demand")) \
            and "If-Match" not in extra:
        scenario = path.split("/")[3]
        extra["If-Match"] = api.get(f"/v1/scenarios/{scenario}").headers["ETag"]
    raw = {k: v.encode() for k, v in extra.items()}  # a header as bytes, as sent on the wire
    if isinstance(body, bytes):  # a file upload (a demand matrix) is sent as it is
        content, kind = body, "application/octet-stream"
    else:
        content, kind = None if body is None else encode(body), "application/json"
    return api.client.request(method, path, content=content,
                              headers={**api.headers("acme", "admin"), **raw,
                                       "Content-Type": kind})


@pytest.fixture()
def world(api: Api, container: Container) -> Iterator[World]:
    with relay_and_projector(container):
        target = api.post("/v1/bi/targets", {"name": "dash"}, role="admin").json()["target_id"]
        rival = api.scenario("rival")
        run = api.post(f"/v1/scenarios/{rival}/simulations", {}, tenant="rival").json()["id"]
        dataset, scenario = api.dataset(), api.scenario()
        fork = api.post("/v1/scenarios", {"name": "fork", "fork_of": scenario}).json()["id"]
        api.post(f"/v1/scenarios/{fork}/edits", {"edits": [{"op": "close_link", "link_id": "c"}]},
                 headers={"If-Match": '"1"'})
        request = api.post(f"/v1/scenarios/{fork}/merge-requests", {"title": "close c"}).json()
        yield World(dataset, scenario, rival, run, target, api.scenario(dataset=dataset), fork,
                    request["id"])


def test_hostile_writes_are_refused_or_served(api: Api, container: Container,
                                              world: World) -> None:
    statuses: dict[int, int] = {}

    @given(request=requests(world))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def one(request: tuple[str, str, Any, dict[str, str]]) -> None:
        method, path, body, headers = request
        before = stored_events(container)
        response = send(api, world, method, path, body, headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert stored_events(container) == before, (path, body, response.text)

    one()
    assert_every_tenant_served(api, container, world)
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses), statuses


def assert_every_tenant_served(api: Api, container: Container, world: World) -> None:
    wait_caught_up(container, timeout=120)
    with container.engine.connect() as connection:
        errors = connection.execute(text(
            "SELECT event_type, error FROM projection_errors")).all()
    assert errors == [], errors
    fresh = api.post("/v1/scenarios", {"name": "after", "dataset_id": api.dataset("rival")},
                     tenant="rival")
    assert fresh.status_code == 201, fresh.text
    for tenant in ("acme", "rival"):
        listed = api.get("/v1/scenarios?wait=30", tenant=tenant)
        assert listed.status_code == 200, listed.text
        ids = {item["id"] for item in listed.json()["items"]}
        assert (world.scenario if tenant == "acme" else fresh.json()["id"]) in ids
