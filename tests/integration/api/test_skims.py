"""Skims of a completed run over HTTP: computed by the worker's code on the scenario's matrix."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import numpy as np
import openmatrix as omx
import pytest

from adapters.demand_matrix import read_csv, write_omx
from domain.simulation import SimulationRun
from infra.cli_support import OPERATOR
from simulation_worker.child import ModelSpec, _run
from simulation_worker.model_input import resolve
from tests.integration.api.conftest import Api, is_problem
from tests.integration.api.test_demand import upload


def complete_in_process(api: Api, run_id: uuid.UUID, max_blob_bytes: int = 0) -> None:
    """What the worker does for a job: resolve the input, run the model, store the blobs."""
    app = api.container.app
    run: SimulationRun = app.get_run("acme", run_id)
    document = resolve(app, run).document()
    spec = ModelSpec("builtin", max_blob_bytes=max_blob_bytes)
    output, indicators, attachments = _run(document, spec, lambda *_: None)  # type: ignore[arg-type]
    for attachment in attachments:
        app.blobs.put("acme", attachment)
    sha256 = app.blobs.put("acme", output)
    app.start_attempt("acme", run_id, 1, "test-worker", OPERATOR)
    app.complete_run("acme", run_id, 1, sha256, indicators, 1.0, OPERATOR)


def test_skims_of_a_run_on_an_uploaded_matrix_download_as_omx_and_csv(api: Api) -> None:
    scenario = api.scenario()
    assert upload(api, scenario, b"origin,destination,trips\n1,2,600\n",
                  "csv").status_code == 200
    run_id = api.container.app.request_simulation("acme", uuid.UUID(scenario), "builtin",
                                                  {"gap": 1e-6}, OPERATOR)
    is_problem(api.get(f"/v1/simulations/{run_id}/skims"), 409)
    complete_in_process(api, run_id)
    assert api.container.app.get_run("acme", run_id).indicators["total_trips"] == 600.0
    omx_file = api.get(f"/v1/simulations/{run_id}/skims?format=omx")
    assert omx_file.status_code == 200, omx_file.text
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "skims.omx"
        path.write_bytes(omx_file.content)
        handle = omx.open_file(str(path), "r")
        try:
            assert handle.mapping("zone") == {1: 0, 2: 1}
            assert sorted(handle.list_matrices()) == ["all_cost", "all_distance", "all_time"]
            assert np.array(handle["all_distance"])[0, 1] == 2.0
        finally:
            handle.close()
    rows = api.get(f"/v1/simulations/{run_id}/skims?measure=time&format=csv").text.splitlines()
    assert rows[0] == "origin,destination,class,measure,value"
    assert len(rows) == 5 and all(",all,time," in row for row in rows[1:])
    body = is_problem(api.get(f"/v1/simulations/{run_id}/skims?class=truck"), 422)
    assert body["problems"] == ["class must be one of all"]
    is_problem(api.get(f"/v1/simulations/{run_id}/skims", tenant="rival"), 404)


def test_two_classes_from_an_omx_upload_give_per_class_flows_indicators_and_skims(
        api: Api) -> None:
    scenario = api.scenario()
    classes = {"classes": [{"name": "car"},
                           {"name": "truck", "pce": 2.5, "allowed_link_types": [1]}]}
    declared = api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
                              headers={**api.headers(), "If-Match": '"1"'})
    assert declared.status_code == 200, declared.text
    matrix = read_csv(b"origin,destination,trips,class\n1,2,600,car\n1,2,100,truck\n")
    assert upload(api, scenario, write_omx(matrix), "omx", version=2).status_code == 200
    got = api.get(f"/v1/scenarios/{scenario}").json()
    assert [c["name"] for c in got["vehicle_classes"]] == ["car", "truck"]
    run_id = api.container.app.request_simulation("acme", uuid.UUID(scenario), "builtin",
                                                  {"gap": 1e-6}, OPERATOR)
    complete_in_process(api, run_id)
    figures = api.container.app.get_run("acme", run_id).indicators
    assert figures["class.car.trips"] == 600.0 and figures["class.truck.trips"] == 100.0
    assert figures["total_trips"] == 700.0
    truck = api.get(f"/v1/simulations/{run_id}/skims?class=truck&measure=cost&format=csv")
    assert truck.status_code == 200, truck.text
    assert truck.text.splitlines()[2].startswith("1,2,truck,cost,")


def test_bad_vehicle_classes_are_a_422_listing_every_problem(api: Api) -> None:
    scenario = api.scenario()
    classes = {"classes": [{"name": "car", "pce": 0}, {"name": "car", "value_of_time": -1}]}
    body = is_problem(api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
                                     headers={**api.headers(), "If-Match": '"1"'}), 422)
    assert body["problems"] == ["class 'car' is declared twice",
                                "class 'car': pce must be a finite, positive number",
                                "class 'car': value_of_time must be a finite, positive number"]


def test_upload_two_classes_simulate_download_skims_and_select_link(api: Api) -> None:
    scenario = api.scenario()
    classes = {"classes": [{"name": "car"}, {"name": "truck", "pce": 2.5}]}
    assert api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
                          headers={**api.headers(), "If-Match": '"1"'}).status_code == 200
    matrix = read_csv(b"origin,destination,trips,class\n1,2,900,car\n1,2,200,truck\n")
    assert upload(api, scenario, write_omx(matrix), "omx", version=2).status_code == 200
    path = f"/v1/scenarios/{scenario}/simulations"
    bad = {"parameters": {"select_links": [{"name": "x", "links": ["zz"]}]}}
    body = is_problem(api.post(path, bad), 422)
    assert body["problems"] == ["select_links 'x': unknown or closed link 'zz'"]
    selections = [{"name": "a", "links": ["a"]},
                  {"name": "a-or-b", "links": ["a", "b"], "mode": "or"}]
    run_id = api.container.app.request_simulation(
        "acme", uuid.UUID(scenario), "builtin", {"gap": 1e-6, "select_links": selections},
        OPERATOR)
    complete_in_process(api, run_id)
    run = api.container.app.get_run("acme", run_id)
    assert run.result_sha256 is not None
    output = json.loads(api.container.app.blobs.get("acme", run.result_sha256))
    on_a = next(row for row in output["links"] if row["id"] == "a")["class_flows"]
    assert 0 < on_a["car"] < 900
    skims = api.get(f"/v1/simulations/{run_id}/skims?class=truck&format=omx")
    assert skims.status_code == 200 and skims.content[:4] == b"\x89HDF"
    for name in ("a", "a-or-b"):
        found = api.get(f"/v1/simulations/{run_id}/select-link/{name}")
        assert found.status_code == 200, found.text
        analysis = found.json()
        for vehicle_class in ("car", "truck"):
            summary = analysis["classes"][vehicle_class]
            assert summary["total_trips"] == pytest.approx(on_a[vehicle_class], rel=1e-9)
            assert summary["top_pairs"][0]["origin"] == 1
            assert analysis["link_flows"][vehicle_class]["a"] == \
                pytest.approx(on_a[vehicle_class], rel=1e-9)
    is_problem(api.get(f"/v1/simulations/{run_id}/select-link/nope"), 404)
    is_problem(api.get(f"/v1/simulations/{run_id}/select-link/a", tenant="rival"), 404)


@pytest.mark.parametrize("classes", [False, True])
def test_skims_and_analyses_too_large_to_store_are_left_out_and_say_why(
        api: Api, classes: bool) -> None:
    scenario = api.scenario()
    if classes:
        declared = {"classes": [{"name": "car"}, {"name": "truck", "pce": 2.5}]}
        assert api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=declared,
                              headers={**api.headers(), "If-Match": '"1"'}).status_code == 200
        matrix = read_csv(b"origin,destination,trips,class\n1,2,900,car\n1,2,200,truck\n")
        assert upload(api, scenario, write_omx(matrix), "omx", version=2).status_code == 200
    parameters: dict[str, object] = {"gap": 1e-6}
    if classes:
        parameters["select_links"] = [{"name": "a", "links": ["a"]}]
    runs = [api.container.app.request_simulation("acme", uuid.UUID(scenario), "builtin",
                                                 {**parameters, "reuse": False}, OPERATOR)
            for _ in range(2)]
    complete_in_process(api, runs[0])
    complete_in_process(api, runs[1], max_blob_bytes=64)  # smaller than any matrix blob
    whole, cut = (json.loads(api.container.app.blobs.get(
        "acme", api.container.app.get_run("acme", r).result_sha256 or "")) for r in runs)
    assert cut["links"] == whole["links"] and cut["zones"] == whole["zones"]
    assert "skims_sha256" not in cut and "select_links" not in cut
    reason = cut["omitted"]["skims"]
    assert reason.startswith("the skims take ") and "CARTOLOG_BLOB_MAX_BYTES" in reason
    body = is_problem(api.get(f"/v1/simulations/{runs[1]}/skims"), 404)
    assert body["detail"] == f"run {runs[1]} has no skims ({reason})"
    assert api.get(f"/v1/simulations/{runs[0]}/skims").status_code == 200
    if classes:
        why = cut["omitted"]["select-link analysis 'a'"]
        for path in ("", "/links"):
            body = is_problem(api.get(f"/v1/simulations/{runs[1]}/select-link/a{path}"), 404)
            assert body["detail"] == f"run {runs[1]} has no select-link analysis 'a': {why}"
        assert api.get(f"/v1/simulations/{runs[0]}/select-link/a").status_code == 200
        # another tenant learns nothing, not even why
        body = is_problem(api.get(f"/v1/simulations/{runs[1]}/select-link/a", tenant="rival"),
                          404)
        assert "CARTOLOG" not in body["detail"]


def test_a_class_whose_skims_hdf5_cannot_hold_is_refused(api: Api) -> None:
    scenario = api.scenario()
    # '_v' looks harmless, but its skims '_v_time'... start a prefix PyTables reserves.
    declared = api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes",
                              json={"classes": [{"name": "_v"}]},
                              headers={**api.headers(), "If-Match": '"1"'})
    body = is_problem(declared, 422)
    assert "must not start with '_v_'" in json.dumps(body)
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1

