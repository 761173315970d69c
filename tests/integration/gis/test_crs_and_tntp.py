"""Files in a projected CRS and TNTP networks, through the HTTP upload and
`cartolog dataset import`, against the real database (decision 0718)."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest
import shapely
from pyogrio.raw import write

from adapters.gis.tables import network_tables
from api.tntp_import import network_from_tntp_folder
from domain.values import Network
from infra.settings import Settings
from infra.wiring import Container, build
from tests.integration.api.conftest import Api, api, is_problem  # noqa: F401
from tests.integration.conftest import container, stored_events  # noqa: F401
from tests.integration.gis import files
from tests.integration.gis.test_bad_files import upload
from tests.integration.test_cli import cartolog

SIOUX = files.NETWORKS / "SiouxFalls"


def projected_gpkg(path: Path, crs: str | None = "EPSG:3857") -> Path:
    """The tiny network's links and zones, both layers written in `crs` (Web Mercator by
    default; None: a layer naming no CRS)."""
    from pyproj import Transformer

    to_crs = Transformer.from_crs("EPSG:4326", crs or "EPSG:3857", always_xy=True)
    for index, table in enumerate(network_tables(files.tiny_with_polygons())[1:3]):
        shapes = shapely.transform(np.array([shapely.from_wkb(shapely.to_wkb(g))
                                             for g in table.geometries], dtype=object),
                                   lambda xy: np.column_stack(to_crs.transform(xy[:, 0],
                                                                               xy[:, 1])))
        with warnings.catch_warnings():  # pyogrio warns of a layer without a CRS
            warnings.simplefilter("ignore", UserWarning)
            write(str(path), shapely.to_wkb(shapes),
                  [np.array(v, dtype=object if isinstance(v[0], str) else None)
                   for v in table.columns.values()], fields=list(table.columns),
                  layer=table.name, driver="GPKG", geometry_type=table.geometry_type,
                  crs=crs, append=index > 0)
    return path


def stored_network(container: Container, dataset_id: str) -> Network:  # noqa: F811
    dataset = container.app.get_dataset("acme", UUID(dataset_id))
    return container.app.load_network("acme", dataset.network_sha256)


def test_a_geopackage_in_web_mercator_is_reprojected(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    response = upload(api, projected_gpkg(tmp_path / "mercator.gpkg"))
    assert response.status_code == 201, response.text
    network = stored_network(container, response.json()["id"])
    original = files.tiny_with_polygons()
    where = {node.id: (node.x, node.y) for node in original.nodes}
    assert [link.geometry for link in network.links] == [
        (pytest.approx(where[link.from_node], abs=1e-9),
         pytest.approx(where[link.to_node], abs=1e-9)) for link in original.links]
    assert [[list(ring) for ring in zone.polygon] for zone in network.zones] == [
        [[pytest.approx(xy, abs=1e-9) for xy in ring] for ring in zone.polygon]
        for zone in original.zones]


@pytest.mark.parametrize(("crs", "form", "reason"), [
    ("EPSG:3857", {"crs": "EPSG:27700"},
     "links: the layer is in EPSG:3857, not the crs given (EPSG:27700)"),
    (None, {}, "links: the layer names no coordinate reference system"),
    ("EPSG:3857", {"crs": "EPSG:none"}, "crs: crs 'EPSG:none' is not a coordinate reference"),
])
def test_a_layer_whose_crs_is_unknown_or_contradicted_is_refused(
        api: Api, container: Container, tmp_path: Path,  # noqa: F811
        crs: str | None, form: dict[str, str], reason: str) -> None:
    before = stored_events(container)
    body = is_problem(upload(api, projected_gpkg(tmp_path / "n.gpkg", crs), **form), 422)
    assert any(p.startswith(reason) for p in body["problems"]), body
    assert stored_events(container) == before


def test_a_layer_naming_no_crs_takes_the_one_given(api: Api, tmp_path: Path) -> None:  # noqa: F811
    path = projected_gpkg(tmp_path / "n.gpkg", None)  # coordinates in Web Mercator
    response = upload(api, path, crs="EPSG:3857")
    assert response.status_code == 201, response.text
    assert response.json()["link_count"] == 3


def tntp_zip(path: Path, folder: Path, inner: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member in sorted(folder.iterdir()):
            if member.name.endswith((".tntp", ".tntp.gz")):
                archive.write(member, f"{inner}{member.name}")
    return path


def sioux_falls_in_utm(folder: Path) -> Path:
    """Sioux Falls with its node file in UTM zone 14N (EPSG:32614), as a planner's would be;
    the WGS84 positions it came from are Sioux Falls' own node file's."""
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32614", always_xy=True)
    folder.mkdir()
    for kind in ("net", "trips"):
        name = f"SiouxFalls_{kind}.tntp"
        (folder / name).write_text((SIOUX / name).read_text())
    rows = ["Node X Y ;"]
    for line in (SIOUX / "SiouxFalls_node.tntp").read_text().splitlines()[1:]:
        if line.strip():
            node, x, y = line.replace(";", " ").split()[:3]
            easting, northing = to_utm.transform(float(x), float(y))
            rows.append(f"{node} {easting:.3f} {northing:.3f} ;")
    (folder / "SiouxFalls_node.tntp").write_text("\n".join(rows) + "\n")
    return folder


def assert_placed_as_sioux_falls(network: Network) -> None:
    network_wgs84 = network_from_tntp_folder(SIOUX)
    assert [(n.id, pytest.approx(n.x, abs=1e-7), pytest.approx(n.y, abs=1e-7))
            for n in network_wgs84.nodes] == [(n.id, n.x, n.y) for n in network.nodes]


def test_a_tntp_zip_uploads_and_its_node_crs_is_applied(
        api: Api, container: Container, tmp_path: Path) -> None:  # noqa: F811
    path = tntp_zip(tmp_path / "sioux.zip", sioux_falls_in_utm(tmp_path / "utm"), "Sioux/")
    before = stored_events(container)
    refused = is_problem(upload(api, path), 422)
    assert any("give the node file's crs" in p for p in refused["problems"]), refused
    assert stored_events(container) == before
    response = upload(api, path, crs="EPSG:32614")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["link_count"], body["zone_count"], body["source_format"]) == (76, 24, "tntp")
    assert_placed_as_sioux_falls(stored_network(container, body["id"]))


def test_the_json_tntp_import_takes_a_crs(api: Api, container: Container,  # noqa: F811
                                          tmp_path: Path) -> None:
    folder = sioux_falls_in_utm(tmp_path / "utm")
    texts = {kind: (folder / f"SiouxFalls_{kind}.tntp").read_text()
             for kind in ("net", "trips", "node")}
    body = {"format": "tntp", "name": "Sioux Falls", **texts}
    refused = is_problem(api.post("/v1/datasets", body), 422)
    assert any("give the node file's crs" in p for p in refused["problems"]), refused
    created = api.post("/v1/datasets", {**body, "crs": "EPSG:32614"})
    assert created.status_code == 201, created.text
    assert_placed_as_sioux_falls(stored_network(container, created.json()["id"]))


def test_cartolog_imports_a_tntp_folder(settings: Settings, tmp_path: Path) -> None:
    url = settings.database_url
    assert cartolog("tenant", "create", "city", database_url=url).returncode == 0
    imported = cartolog("dataset", "import", str(SIOUX), "--tenant", "city",
                        database_url=url)
    assert imported.returncode == 0, imported.stderr
    services = build(settings)
    try:
        dataset = services.app.get_dataset("city", UUID(imported.stdout.strip()))
    finally:
        services.close()
    assert (dataset.name, dataset.link_count, dataset.zone_count, dataset.source_format) == (
        "SiouxFalls", 76, 24, "tntp")
    utm = sioux_falls_in_utm(tmp_path / "utm")
    refused = cartolog("dataset", "import", str(utm), "--tenant", "city", database_url=url)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "give the node file's crs" in refused.stderr
    placed = cartolog("dataset", "import", str(utm / "SiouxFalls_net.tntp"), "--tenant",
                      "city", "--crs", "EPSG:32614", database_url=url)
    assert placed.returncode == 0, placed.stderr
    services = build(settings)
    try:
        dataset = services.app.get_dataset("city", UUID(placed.stdout.strip()))
        assert dataset.name == "SiouxFalls_net.tntp"
        assert_placed_as_sioux_falls(services.app.load_network("city", dataset.network_sha256))
    finally:
        services.close()
