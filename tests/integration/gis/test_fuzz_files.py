"""Malformed files, generated: every importer answers with a network or with ImportRejected
listing reasons, never with another error (which would be a 500)."""

from __future__ import annotations

import functools
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.gis.problems import ImportRejected
from api.imports.files import ImportOptions, read_network
from domain.values import Network
from tests.integration.gis import files

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
Edit = tuple[int, bytes]
edits = st.lists(st.tuples(st.integers(min_value=0, max_value=10**7),
                           st.binary(min_size=0, max_size=8)), min_size=1, max_size=6)


def mutated(source: bytes, changes: list[Edit], cut: int | None) -> bytes:
    content = bytearray(source if cut is None else source[: cut % (len(source) + 1)])
    for position, replacement in changes:
        at = position % (len(content) + 1)
        content[at: at + len(replacement)] = replacement
    return bytes(content)


def outcome(path: Path, fmt: str) -> None:
    try:
        _, network = read_network(path, ImportOptions(format=fmt, hexagon_km=1.0))
    except ImportRejected as rejected:
        assert rejected.problems and all(isinstance(p, str) and p for p in rejected.problems)
        return
    assert isinstance(network, Network)
    network.problems()


@functools.cache
def seeds() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        return {"gmns": files.gmns_zip(tmp / "seed.zip").read_bytes(),
                "gpkg": files.gpkg(tmp / "seed.gpkg").read_bytes(),
                "osm": files.OSM_EXTRACT.read_bytes()}


@FUZZ
@given(fmt=st.sampled_from(["gmns", "gpkg", "osm"]), changes=edits,
       cut=st.none() | st.integers(min_value=0, max_value=10**7))
def test_corrupted_bytes(tmp_path_factory: object, fmt: str, changes: list[Edit],
                         cut: int | None) -> None:
    folder = tmp_path_factory.mktemp(fmt)  # type: ignore[attr-defined]
    source = seeds()[fmt]
    suffix = {"gmns": ".zip", "gpkg": ".gpkg", "osm": ".osm.pbf"}[fmt]
    path = folder / f"upload{suffix}"
    path.write_bytes(mutated(source, changes, cut))
    outcome(path, fmt)


TOKENS = [*"0123456789.,-\"\n ;x()", "nan", "inf", "1e400", "9" * 30 + ".0", "99999999999",
          "-1", "LINESTRING (0 0, 1 1)", "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))", "\x00", "é"]
CSV_TEXT = st.lists(st.sampled_from(TOKENS), max_size=6).map("".join)


@FUZZ
@given(name=st.sampled_from(["node.csv", "link.csv", "zone.csv", "demand.csv", "config.csv"]),
       position=st.integers(min_value=0, max_value=5000), insert=CSV_TEXT,
       remove=st.integers(min_value=0, max_value=20))
def test_edited_gmns_csv(tmp_path_factory: object, name: str, position: int, insert: str,
                         remove: int) -> None:
    folder = tmp_path_factory.mktemp("csv")  # type: ignore[attr-defined]
    network = files.tiny_with_polygons()
    seed = files.gmns_zip(folder / "seed.zip", network)
    with zipfile.ZipFile(seed) as archive:
        texts = {n: archive.read(n).decode() for n in archive.namelist()}
    text = texts.get(name, "o_zone_id,d_zone_id,volume\n1,2,3.0\n")
    at = position % (len(text) + 1)
    texts[name] = text[:at] + insert + text[at + remove:]
    with zipfile.ZipFile(folder / "upload.zip", "w") as archive:
        for file_name, content in texts.items():
            archive.writestr(file_name, content)
    outcome(folder / "upload.zip", "gmns")
