"""A scenario's demand matrix over HTTP: upload OMX or CSV with If-Match, download, refuse."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import openmatrix as omx
from fastapi.testclient import TestClient
from sqlalchemy import text

from adapters.demand_matrix import read_csv, write_omx
from infra.http import build_api
from infra.settings import ApiSettings
from tests.conftest import REPO
from tests.integration.api.conftest import Api, is_problem

CSV = b"origin,destination,trips,class\n1,2,30,car\n2,1,10,car\n1,2,4,truck\n"


def upload(api: Api, scenario: str, content: bytes, file_format: str, version: int = 1,
           tenant: str = "acme") -> Any:
    return api.client.post(
        f"/v1/scenarios/{scenario}/demand?format={file_format}", content=content,
        headers={**api.headers(tenant, "editor"), "If-Match": f'"{version}"',
                 "Content-Type": "application/octet-stream"})


def blob_count(api: Api) -> int:
    with api.container.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM blobs")).scalar_one())


def test_an_omx_upload_is_a_new_version_and_downloads_as_omx_with_zone_ids(api: Api) -> None:
    scenario = api.scenario()
    done = upload(api, scenario, write_omx(read_csv(CSV)), "omx")
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == '"2"'
    assert done.json()["classes"] == {"car": 40.0, "truck": 4.0}
    assert api.get(f"/v1/scenarios/{scenario}").json()["demand_matrix"]["zone_count"] == 2
    downloaded = api.get(f"/v1/scenarios/{scenario}/demand?format=omx")
    assert downloaded.status_code == 200
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demand.omx"
        path.write_bytes(downloaded.content)
        handle = omx.open_file(str(path), "r")
        try:
            assert handle.mapping("zone") == {1: 0, 2: 1}
            np.testing.assert_array_equal(np.array(handle["car"]), [[0.0, 30.0], [10.0, 0.0]])
        finally:
            handle.close()
    csv_text = api.get(f"/v1/scenarios/{scenario}/demand?format=csv").text
    assert csv_text.splitlines()[1:] == ["1,2,30.0,car", "2,1,10.0,car", "1,2,4.0,truck"]


def test_a_bad_file_is_a_422_listing_every_problem_and_stores_nothing(api: Api) -> None:
    scenario = api.scenario()
    before = blob_count(api)
    bad_csv = b"origin,destination,trips\n1,2,-3\n1,9,2\n"
    body = is_problem(upload(api, scenario, bad_csv, "csv"), 422)
    assert body["problems"] == ["line 2: trips must be a finite, non-negative number, not -3"]
    unknown = is_problem(upload(api, scenario, b"origin,destination,trips\n1,9,2\n", "csv"), 422)
    assert "unknown zone 9" in unknown["problems"]
    broken = is_problem(upload(api, scenario, b"\x89HDF\r\n garbage", "omx"), 422)
    assert broken["problems"] == ["the file is not an OMX (HDF5) file"]
    # A file that crashes the HDF5 library crashed the API process itself before 0709.
    crashes = (REPO / "tests" / "data" / "omx" / "crashes-hdf5.omx").read_bytes()
    crashed = is_problem(upload(api, scenario, crashes, "omx"), 422)
    assert crashed["problems"] == [
        "the OMX file is corrupt: reading it stopped the HDF5 library (signal SIGSEGV)"]
    assert blob_count(api) == before
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1
    is_problem(api.get(f"/v1/scenarios/{scenario}/demand"), 404)


def test_upload_needs_if_match_and_another_tenant_gets_404(api: Api) -> None:
    scenario = api.scenario()
    missing = api.client.post(f"/v1/scenarios/{scenario}/demand?format=csv", content=CSV,
                              headers=api.headers("acme", "editor"))
    is_problem(missing, 428)
    is_problem(upload(api, scenario, CSV, "csv", tenant="rival"), 404)
    assert upload(api, scenario, CSV, "csv").status_code == 200
    is_problem(api.get(f"/v1/scenarios/{scenario}/demand", tenant="rival"), 404)
    is_problem(upload(api, scenario, CSV, "csv", version=1), 412)


def test_a_matrix_of_more_classes_than_may_be_declared_is_a_422_storing_nothing(
        api: Api) -> None:
    scenario = api.scenario()
    before = blob_count(api)
    rows = "".join(f"1,2,1,c{k}\n" for k in range(11)).encode()
    body = is_problem(upload(api, scenario, b"origin,destination,trips,class\n" + rows, "csv"),
                      422)
    assert body["problems"] == ["the file has 11 classes, at most 10 are allowed"]
    assert blob_count(api) == before
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_a_matrix_over_more_zones_than_the_scenario_has_is_a_422_before_parsing_tables(
        api: Api) -> None:
    scenario = api.scenario()
    rows = "".join(f"{k},{k + 1},1\n" for k in range(1, 5001)).encode()
    body = is_problem(upload(api, scenario, b"origin,destination,trips\n" + rows, "csv"), 422)
    assert body["problems"] == ["the file names 5001 zones, at most 2 are allowed "
                                "(no more than the scenario has)"]
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_trips_over_1e12_or_in_python_only_syntax_are_422s_storing_nothing(api: Api) -> None:
    scenario = api.scenario()
    before = blob_count(api)
    body = is_problem(upload(api, scenario, b"origin,destination,trips\n1,2,2e12\n1,1,1_0\n"
                             b"2,1,\xef\xbc\x91\n2,2,infinity\n", "csv"), 422)
    assert body["problems"] == [
        "line 2: trips must be at most 1e+12, not 2e12",
        "line 3: trips '1_0' is not a plain decimal number (digits 0-9, an optional sign, "
        "point and exponent; no '_' or other digits)",
        "line 4: trips '\uff11' is not a plain decimal number (digits 0-9, an optional sign, "
        "point and exponent; no '_' or other digits)",
        "line 5: trips must be a finite number, not infinity"]
    big = np.array([[0.0, 5e12], [1.0, 0.0]])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.omx"
        handle = omx.open_file(str(path), "w")
        handle["car"] = big
        handle.create_mapping("zone", np.array([1, 2]))
        handle.close()
        omx_body = is_problem(upload(api, scenario, path.read_bytes(), "omx"), 422)
    assert omx_body["problems"] == [
        "class 'car': 1 over 1e+12 value(s), first from zone 1 to zone 2"]
    assert blob_count(api) == before
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_files_that_used_to_crash_the_parser_are_422s(api: Api) -> None:
    scenario = api.scenario()
    huge_zone = is_problem(upload(api, scenario, b"origin,destination,trips\n"
                                  b"99999999999999999999,2,3\n", "csv"), 422)
    assert huge_zone["problems"] == ["line 2: a zone id must be between 1 and 2147483647"]
    long_field = b"origin,destination,trips\n1,2," + b"1" * 131_073 + b"\n"
    is_problem(upload(api, scenario, long_field, "csv"), 422)
    for links in (5, True, 3.5):
        body = {"parameters": {"select_links": [{"name": "s", "links": links}]}}
        refused = is_problem(api.post(f"/v1/scenarios/{scenario}/simulations", body), 422)
        assert refused["problems"] == ["select_links 's': name at least one link"]
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_class_and_selection_names_that_break_omx_or_urls_are_422s(api: Api) -> None:
    scenario = api.scenario()
    bad = "may hold only letters, digits, '_', '-' and inner spaces"
    csv_body = is_problem(upload(api, scenario, b"origin,destination,trips,class\n1,2,3,a/b\n",
                                 "csv"), 422)
    assert csv_body["problems"] == [f"a class name 'a/b' {bad}"]
    classes = {"classes": [{"name": ".."}]}
    declared = is_problem(api.client.put(
        f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
        headers={**api.headers(), "If-Match": '"1"'}), 422)
    assert declared["problems"] == [f"a class name '..' {bad}"]
    selection = {"parameters": {"select_links": [{"name": "x/y", "links": ["a"]}]}}
    refused = is_problem(api.post(f"/v1/scenarios/{scenario}/simulations", selection), 422)
    assert refused["problems"] == [f"select_links: a selection name 'x/y' {bad}"]
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_a_run_whose_matrix_classes_differ_from_the_declared_classes_is_a_422(
        api: Api) -> None:
    scenario = api.scenario()
    classes = {"classes": [{"name": "car"}]}
    assert api.client.put(f"/v1/scenarios/{scenario}/vehicle-classes", json=classes,
                          headers={**api.headers(), "If-Match": '"1"'}).status_code == 200
    assert upload(api, scenario, CSV, "csv", version=2).status_code == 200
    body = is_problem(api.post(f"/v1/scenarios/{scenario}/simulations", {}), 422)
    assert body["problems"] == ["the demand matrix's class 'truck' is not a declared vehicle "
                                "class (declared: car); its trips would be dropped"]


def test_vehicle_class_values_of_the_wrong_type_or_size_are_422s(api: Api) -> None:
    scenario = api.scenario()
    for spec, problem in (({"pce": 1e308}, "class 'car': pce must be at most 1e+12"),
                          ({"allowed_link_types": [2**70]},
                           "class 'car': link type must be between 0 and 2147483647"),
                          ({"pce": True}, None), ({"pce": "1"}, None)):
        body = is_problem(api.client.put(
            f"/v1/scenarios/{scenario}/vehicle-classes",
            json={"classes": [{"name": "car", **spec}]},
            headers={**api.headers(), "If-Match": '"1"'}), 422)
        if problem is not None:
            assert body["problems"] == [problem]
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1


def test_a_class_name_hdf5_reserves_is_refused_and_a_stored_one_is_a_409_as_omx(
        api: Api, monkeypatch: Any) -> None:
    scenario = api.scenario()
    before = blob_count(api)
    # '_v_' starts a name PyTables reserves: the upload refuses what the OMX writer would
    body = is_problem(upload(api, scenario, b"origin,destination,trips,class\n1,2,30,_v_car\n",
                             "csv"), 422)
    assert any("must not start with '_v_'" in problem for problem in body["problems"])
    assert blob_count(api) == before
    assert api.get(f"/v1/scenarios/{scenario}").json()["version"] == 1
    assert upload(api, scenario, b"origin,destination,trips,class\n1,2,30,car\n",
                  "csv").status_code == 200
    # Classes stored before the name rule (decision 0010: events are never rewritten).
    for name, problem in (
            ("_v_car", "'_v_car' cannot be an OMX matrix name (PyTables reserves names "
                       "starting with '_v_')"),
            ("a/b", "'a/b' cannot be an OMX matrix name (HDF5 names hold no '/' or NUL)")):
        old = read_csv(b"origin,destination,trips,class\n1,2,30,car\n")
        old = type(old)(old.zone_ids, {name: old.trips["car"]})
        monkeypatch.setattr(api.container.app, "demand_matrix_content",
                            lambda *args, old=old: old.to_blob())
        body = is_problem(api.get(f"/v1/scenarios/{scenario}/demand?format=omx"), 409)
        assert "format=csv" in body["detail"]
        assert body["problems"] == [problem]
        csv_text = api.get(f"/v1/scenarios/{scenario}/demand?format=csv").text
        assert csv_text.splitlines()[1:] == [f"1,2,30.0,{name}"]


def test_a_matrix_over_the_cell_cap_is_a_422_naming_zones_classes_and_cap(
        api: Api, monkeypatch: Any) -> None:
    scenario = api.scenario()
    before = blob_count(api)
    # the cap is what CARTOLOG_BLOB_MAX_BYTES has room for, read when the app is built
    blob_limits: list[int] = []
    monkeypatch.setattr("infra.http.demand_matrix.cells_within",
                        lambda blob_max: blob_limits.append(blob_max) or 7)
    settings = ApiSettings(read_wait_s=0.2, rate_per_second=1000, rate_burst=1000)
    with TestClient(build_api(api.container, settings), base_url="http://acme.cartolog.example",
                    raise_server_exceptions=False) as client:
        capped = Api(api.container, client)
        body = is_problem(upload(capped, scenario, CSV, "csv"), 422)
    assert blob_limits == [api.container.settings.blob_max_bytes]
    assert body["problems"][0].startswith(
        "the matrix would hold 2 x 2 zones x 2 class(es) = 8 cells, at most 7 are allowed")
    assert blob_count(api) == before


def test_a_spreadsheets_semicolon_csv_uploads_like_a_comma_csv(api: Api) -> None:
    scenario = api.scenario()
    semicolons = b"origin;destination;trips;class\r\n1;2;30;car\r\n2;1;10,5;car\r\n1;2;4;truck\r\n"
    done = upload(api, scenario, semicolons, "csv")
    assert done.status_code == 200, done.text
    assert done.json()["classes"] == {"car": 40.5, "truck": 4.0}
