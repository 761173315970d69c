"""TNTP files as planners have them: a folder or a zip, named in any case
(`Birmingham_Net.tntp`, `Birmingham_Nodes.tntp`), gzipped or not, through the one reader the
API's upload and `cartolog dataset import` share (api/imports/files.py)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from adapters.gis.problems import ImportRejected
from api.imports.files import ImportOptions, guess_format, read_network
from api.tntp_import import MAX_TNTP_BYTES, network_from_tntp_folder, tntp_kind
from domain.errors import InvalidCommand
from simulation_worker.model.tntp import load_tntp_folder
from tests.unit.api.test_uploads import NET, NETWORKS, TRIPS

NODE = "node X Y ;\n1 -96.77 43.61 ;\n2 -96.76 43.61 ;\n3 -96.76 43.62 ;\n"


@pytest.mark.parametrize(("name", "kind"), [
    ("SiouxFalls_net.tntp", "net"), ("Birmingham_Net.tntp", "net"),
    ("x_TRIPS.tntp.gz", "trips"), ("Birmingham_Nodes.tntp", "node"), ("a_node.tntp", "node"),
    ("Anaheim_flow.tntp", None), ("Philadelphia_toll.tntp", None), ("net.tntp", None),
    ("x_net.tntp.zip", None)])
def test_file_kinds_are_named_in_any_case(name: str, kind: str | None) -> None:
    assert tntp_kind(name) == kind


def write_folder(folder: Path, names: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in names.items():
        data = text.encode()
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return folder


def test_a_folder_named_in_capitals_reads_in_both_readers(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "City", {"City_Net.tntp": NET, "City_Trips.tntp.gz": TRIPS,
                                              "City_Nodes.tntp": NODE})
    network = network_from_tntp_folder(folder)
    assert [(n.x, n.y) for n in network.nodes][:1] == [(-96.77, 43.61)]
    case = load_tntp_folder(folder)
    assert case.name == "City" and case.network.n_links == len(network.links) == 3


def test_a_zip_of_a_folder_is_read_and_macos_copies_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "city.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("city/city_net.tntp", NET)
        archive.writestr("city/city_trips.tntp", TRIPS)
        archive.writestr("__MACOSX/city/._city_net.tntp", b"\x00\x05\x16\x07 resource fork")
    assert guess_format(path) == "tntp"
    fmt, network = read_network(path, ImportOptions())
    assert fmt == "tntp" and len(network.links) == 3 and len(network.zones) == 2


def test_the_net_file_named_directly_reads_its_folder(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", {"x_net.tntp": NET, "x_trips.tntp": TRIPS})
    assert guess_format(folder / "x_net.tntp") == guess_format(folder) == "tntp"
    assert read_network(folder / "x_net.tntp", ImportOptions())[1].links


@pytest.mark.parametrize(("names", "reason"), [
    ({"x_net.tntp": NET}, "a TNTP upload needs *_net.tntp and *_trips.tntp"),
    ({"x_net.tntp": NET, "y_NET.tntp": NET, "x_trips.tntp": TRIPS},
     "more than one *_net.tntp[.gz]"),
    ({"x_net.tntp": NET, "x_trips.tntp.gz": TRIPS[:10]}, "not a readable gzip file"),
])
def test_a_broken_folder_is_refused_with_its_reason(tmp_path: Path, names: dict[str, str],
                                                    reason: str) -> None:
    folder = write_folder(tmp_path / "f", names)
    if "x_trips.tntp.gz" in names:  # written whole by write_folder: cut the gzip short
        gz = folder / "x_trips.tntp.gz"
        gz.write_bytes(gz.read_bytes()[:-12])
    with pytest.raises(ImportRejected) as refused:
        read_network(folder, ImportOptions(format="tntp"))
    assert any(reason in p for p in refused.value.problems), refused.value.problems


def test_a_zip_declaring_more_than_the_limit_is_refused_before_inflating(
        tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_net.tntp", NET)
        archive.writestr("x_trips.tntp", b"\n" * (MAX_TNTP_BYTES + 1))
    with pytest.raises(InvalidCommand, match="at most 1024 MiB are read"):
        network_from_tntp_folder(path)


@pytest.mark.parametrize(("options", "reason"), [
    (ImportOptions(format="tntp", first_thru_node=2), "first_thru_node cannot be set"),
    (ImportOptions(format="tntp", mapping={"capacity": "cap"}), "a field mapping cannot"),
    (ImportOptions(format="tntp", crs="EPSG:0"), "not a coordinate reference system"),
    (ImportOptions(format="osm", crs="EPSG:27700"), "crs cannot be set for an OSM file"),
])
def test_options_that_mean_nothing_for_the_format_are_refused(
        options: ImportOptions, reason: str) -> None:
    with pytest.raises(ImportRejected) as refused:
        read_network(NETWORKS / "SiouxFalls", options)
    assert any(reason in p for p in refused.value.problems), refused.value.problems


def test_chicago_sketch_imports_with_its_crs() -> None:
    fmt, network = read_network(NETWORKS / "ChicagoSketch", ImportOptions(crs="EPSG:26771"))
    assert fmt == "tntp" and network.problems() == [] and len(network.links) == 2950


@pytest.mark.parametrize(("change", "reason"), [
    (lambda net, trips: (net.replace("<FIRST THRU NODE> 1", "<FIRST THRU NODE> 1\n"
                                     "<NUMBER OF LINKS> 4"), trips),
     "net: <NUMBER OF LINKS> 4 but the file holds 3 link rows: is it cut short?"),
    (lambda net, trips: (net, trips.replace("<END OF METADATA>",
                                            "<TOTAL OD FLOW> 41.0\n<END OF METADATA>")),
     "trips: <TOTAL OD FLOW> 41 but the trips add up to 40: is the file cut short?"),
])
def test_a_header_that_disagrees_with_the_rows_is_refused_by_both_readers(
        tmp_path: Path, change: object, reason: str) -> None:
    """Every file of the TNTP repository agrees with its <NUMBER OF LINKS> and, to the six
    digits it prints, its <TOTAL OD FLOW>: a difference is a file cut short."""
    from simulation_worker.model.errors import ModelInputError

    net, trips = change(NET, TRIPS)  # type: ignore[operator]
    folder = write_folder(tmp_path / "f", {"x_net.tntp": net, "x_trips.tntp": trips})
    with pytest.raises(InvalidCommand) as refused:
        network_from_tntp_folder(folder)
    (problem,) = refused.value.problems
    assert problem.startswith(reason), problem
    with pytest.raises(ModelInputError, match=reason.split(": ", 1)[1].split(":")[0]):
        load_tntp_folder(folder)


def test_a_total_printed_to_six_digits_agrees(tmp_path: Path) -> None:
    trips = TRIPS.replace("<END OF METADATA>", "<TOTAL OD FLOW> 4.00001e+001\n<END OF METADATA>")
    folder = write_folder(tmp_path / "f", {"x_net.tntp": NET.replace(
        "<FIRST THRU NODE> 1", "<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 3"), "x_trips.tntp": trips})
    assert len(network_from_tntp_folder(folder).links) == 3
    assert load_tntp_folder(folder).trips.sum() == 40.0
