"""A planner's round trip over HTTP through the real pipeline (relay, broker, dispatcher,
worker, recorder, projector): Sioux Falls with two vehicle classes from an uploaded OMX,
simulated with a select-link analysis, its skims downloaded and read back in openmatrix,
and the select-link analysis read as a summary and as GeoJSON."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import openmatrix as omx
import pytest

from adapters.demand_matrix import DemandMatrix, write_omx
from infra.wiring import Container
from tests.e2e.test_api_flow import wait_completed, whole_pipeline
from tests.integration.api.conftest import SIOUX_FALLS, Api, api, is_problem  # noqa: F401
from tests.integration.api.test_demand import upload
from tests.integration.conftest import container  # noqa: F401

ZONES = list(range(1, 25))
TRUCK_PCE = 2.5


def two_class_matrix() -> DemandMatrix:
    """Cars between every pair, trucks a tenth of them, unequal so classes can be told apart."""
    rng = np.random.default_rng(7)
    car = rng.integers(20, 200, size=(24, 24)).astype(float)
    np.fill_diagonal(car, 0.0)
    truck = np.round(car / 10.0)
    return DemandMatrix(ZONES, {"car": car, "truck": truck})


def test_two_class_omx_simulate_skims_and_select_link(api: Api,  # noqa: F811
                                                      container: Container) -> None:  # noqa: F811
    files = {kind: (SIOUX_FALLS / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    matrix = two_class_matrix()
    with whole_pipeline(container):
        dataset = api.post("/v1/datasets", {"format": "tntp", "name": "Sioux Falls", **files})
        assert dataset.status_code == 201, dataset.text
        scenario = api.scenario(dataset=dataset.json()["id"])
        classes = {"classes": [{"name": "car"}, {"name": "truck", "pce": TRUCK_PCE}]}
        declared = api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
                                  headers={**api.headers(), "If-Match": '"1"'})
        assert declared.status_code == 200, declared.text
        uploaded = upload(api, scenario, write_omx(matrix), "omx", version=2)
        assert uploaded.status_code == 200, uploaded.text

        selections = [{"name": "one", "links": ["1"]},
                      {"name": "either", "links": ["1", "3"], "mode": "or"}]
        body = {"model": "builtin",
                "parameters": {"gap": 1e-6, "reuse": False, "select_links": selections}}
        response = api.post(f"/v1/scenarios/{scenario}/simulations", body)
        assert response.status_code == 202, response.text
        run = str(response.json()["id"])
        finished = wait_completed(api, run)
        assert finished["attempt"] == 1

        indicators = {row["name"]: row["value"] for row in
                      api.get(f"/v1/simulations/{run}/indicators").json()["indicators"]}
        assert indicators["class.car.trips"] == pytest.approx(matrix.trips["car"].sum())
        assert indicators["class.truck.trips"] == pytest.approx(matrix.trips["truck"].sum())

        check_skims(api, run)
        link_flows = {f["properties"]["link_id"]: f["properties"]["flow"] for f in
                      api.get(f"/v1/simulations/{run}/links", params={"limit": 100}
                              ).json()["features"]}
        check_select_link(api, run, link_flows)
        by_class = api.get(f"/v1/simulations/{run}/class-flows").json()
        assert by_class["classes"] == ["car", "truck"]
        for link_id, total in link_flows.items():
            assert by_class["flows"]["car"][link_id] + TRUCK_PCE * by_class["flows"]["truck"][
                link_id] == pytest.approx(total, rel=1e-6, abs=1e-6)
        is_problem(api.get(f"/v1/simulations/{run}/class-flows", tenant="rival"), 404)
        is_problem(api.get(f"/v1/simulations/{run}/select-link/one/links", tenant="rival"), 404)
        is_problem(api.get(f"/v1/simulations/{run}/select-link/nope/links"), 404)


def check_skims(api: Api, run: str) -> None:  # noqa: F811
    skims = api.get(f"/v1/simulations/{run}/skims", params={"format": "omx"})
    assert skims.status_code == 200, skims.text
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "skims.omx"
        path.write_bytes(skims.content)
        handle = omx.open_file(str(path), "r")
        try:
            assert handle.mapping("zone") == {zone: i for i, zone in enumerate(ZONES)}
            assert {f"{c}_{m}" for c in ("car", "truck") for m in ("time", "distance", "cost")
                    } == set(handle.list_matrices())
            car_time = np.array(handle["car_time"])
            off_diagonal = ~np.eye(24, dtype=bool)
            assert (car_time[off_diagonal] > 0).all() and np.isfinite(car_time).all()
            # Same costs for both classes here (no tolls, no bans): the same shortest paths.
            assert np.allclose(np.array(handle["truck_time"]), car_time)
        finally:
            handle.close()


def check_select_link(api: Api, run: str, link_flows: dict[str, float]) -> None:  # noqa: F811
    one = api.get(f"/v1/simulations/{run}/select-link/one").json()
    either = api.get(f"/v1/simulations/{run}/select-link/either").json()
    # The demand through link 1, per class, is the flow on link 1 in PCE once weighted.
    pce_total = (one["classes"]["car"]["total_trips"]
                 + TRUCK_PCE * one["classes"]["truck"]["total_trips"])
    assert pce_total == pytest.approx(link_flows["1"], rel=1e-6)
    for vehicle_class in ("car", "truck"):
        assert one["link_flows"][vehicle_class]["1"] == \
            pytest.approx(one["classes"][vehicle_class]["total_trips"], rel=1e-9)
        # "or" counts each trip once: at most the sum of its parts, at least the larger part.
        union = either["classes"][vehicle_class]["total_trips"]
        on_1 = either["link_flows"][vehicle_class]["1"]
        on_3 = either["link_flows"][vehicle_class]["3"]
        assert max(on_1, on_3) - 1e-6 <= union <= on_1 + on_3 + 1e-6
    layer = api.get(f"/v1/simulations/{run}/select-link/one/links")
    assert layer.status_code == 200 and layer.headers["content-type"] == "application/geo+json"
    features = {f["id"]: f for f in layer.json()["features"]}
    assert features["1"]["properties"]["selected"] is True
    assert features["1"]["geometry"]["type"] == "LineString"
    assert features["1"]["properties"]["class_flows"]["car"] == \
        pytest.approx(one["classes"]["car"]["total_trips"], rel=1e-9)
    # The selected demand leaves its origins and reaches its destinations on other links.
    assert len(features) > 2 and not any(f["properties"]["selected"] for k, f in
                                         features.items() if k != "1")
