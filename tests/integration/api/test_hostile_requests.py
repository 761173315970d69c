"""Requests a server must survive: odd query digits, NUL or slashes in a feature id, upload
file names that are paths or too long, an unreadable body. Each gets a clear answer (never a
500), and a refusal never shows the server's own paths."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from api.routes.uploads import safe_name
from infra.wiring import Container
from tests.integration.api.conftest import Api, api, is_problem, tiny_geojson  # noqa: F401
from tests.integration.conftest import container, stored_events  # noqa: F401
from tests.integration.gis import files
from tests.integration.projections.conftest import relay_and_projector, wait_caught_up

ODD_ID = "a/b?c#d %e"


@pytest.fixture()
def projected(container: Container) -> Iterator[Container]:  # noqa: F811
    with relay_and_projector(container):
        yield container


def test_odd_limits_and_feature_ids_get_clear_answers(api: Api,  # noqa: F811
                                                      projected: Container) -> None:
    network = tiny_geojson()
    network["links"]["features"][0]["properties"]["id"] = ODD_ID
    dataset = api.post("/v1/datasets", network)
    assert dataset.status_code == 201, dataset.text
    scenario = api.scenario(dataset=dataset.json()["id"])
    wait_caught_up(projected)
    items = f"/ogc/collections/scenario-{scenario}-links/items"
    for limit in ("²", "٣", "1" * 40, "-1", "+5"):
        body = is_problem(api.get(items, params={"limit": limit}), 400)
        assert "limit must be an integer" in body["detail"]
    found = api.get(f"{items}/{quote(ODD_ID, safe='')}")
    assert found.status_code == 200, found.text
    feature = found.json()
    assert feature["id"] == ODD_ID
    self_link = next(link["href"] for link in feature["links"] if link["rel"] == "self")
    assert self_link.endswith("/items/a%2Fb%3Fc%23d%20%25e")
    assert api.get(self_link.removeprefix("http://acme.cartolog.example")).json()["id"] == ODD_ID
    for missing in ("a%00b", "a%2F", "%00"):
        is_problem(api.get(f"{items}/{missing}"), 404)


@pytest.mark.parametrize("filename", ["..", ".", "/", "a/../..", "x" * 300 + ".zip",
                                      "C:\\Users\\ana\\network.zip", "net\u202ework.zip"])
def test_any_upload_file_name_is_read_or_refused_clearly(
        filename: str, api: Api, container: Container, tmp_path: object) -> None:  # noqa: F811
    from pathlib import Path
    archive = files.gmns_zip(Path(str(tmp_path)) / "network.zip")
    response = api.client.post(
        "/v1/datasets", headers=api.headers("acme", "editor"),
        files={"file": (filename, archive.read_bytes())},
        data={"name": "odd name", "format": "gmns"})
    assert response.status_code == 201, response.text
    assert response.json()["link_count"] > 0


def test_safe_names_keep_the_format_suffix() -> None:
    assert safe_name("network.zip") == "network.zip"
    assert safe_name("C:\\data\\city.osm.pbf") == "city.osm.pbf"
    assert safe_name("x" * 300 + ".osm.pbf") == "upload.osm.pbf"
    assert safe_name("..") == safe_name(None) == safe_name("") == "upload"
    assert safe_name(".hidden.gpkg") == "upload.gpkg"


def test_a_refusal_does_not_show_the_servers_folder(api: Api, container: Container,  # noqa: F811
                                                   tmp_path: object) -> None:
    before = stored_events(container)
    for name, content in (("broken.gpkg", b"not a geopackage at all" * 10),
                          ("broken.zip", b"PK\x03\x04 truncated")):
        response = api.client.post("/v1/datasets", headers=api.headers("acme", "editor"),
                                   files={"file": (name, content)}, data={"name": "bad"})
        body = is_problem(response, 422)
        assert "cartolog-upload" not in json.dumps(body) and "/tmp" not in json.dumps(body)
    assert stored_events(container) == before


def test_a_single_shapefile_part_is_refused_with_what_to_send(api: Api) -> None:  # noqa: F811
    response = api.client.post("/v1/datasets", headers=api.headers("acme", "editor"),
                               files={"file": ("links.shp", io.BytesIO(b"\0" * 100))},
                               data={"name": "shp"})
    body = is_problem(response, 422)
    assert any(".zip holding its .shp, .shx, .dbf" in p for p in body["problems"])


def test_an_unreadable_body_says_so(api: Api) -> None:  # noqa: F811
    for body in (b"x", b"--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n"):
        response = api.client.post(
            "/v1/datasets", headers={**api.headers("acme", "editor"),
                                     "content-type": "multipart/form-data; boundary=zz"
                                     if body != b"x" else "multipart/form-data"},
            content=body)
        problem = is_problem(response, 400)
        assert problem["title"] == "Bad Request" and problem["detail"]
    missing = is_problem(api.get("/v1/no-such-path"), 404)
    assert missing["title"] == "Not Found"
