"""Skims of a completed run over HTTP: computed by the worker's code on the scenario's matrix."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import numpy as np
import openmatrix as omx

from domain.simulation import SimulationRun
from infra.cli_support import OPERATOR
from simulation_worker.child import ModelSpec, _run
from simulation_worker.model_input import resolve
from tests.integration.api.conftest import Api, is_problem
from tests.integration.api.test_demand import upload


def complete_in_process(api: Api, run_id: uuid.UUID) -> None:
    """What the worker does for a job: resolve the input, run the model, store the blobs."""
    app = api.container.app
    run: SimulationRun = app.get_run("acme", run_id)
    document = resolve(app, run).document()
    output, indicators, attachments = _run(document, ModelSpec("builtin"), lambda *_: None)  # type: ignore[arg-type]
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
