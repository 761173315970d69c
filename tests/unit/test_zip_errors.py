"""A damaged zip is refused with a reason, whatever the zipfile module raises for it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from adapters.gis.gmns import gmns_files
from adapters.gis.problems import ImportRejected


def zip_needing_version(version: int) -> bytes:
    """A GMNS zip whose central directory asks for a zip version zipfile does not support."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("node.csv", "node_id,x_coord,y_coord\n1,0,0\n")
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")
    data[central + 6:central + 8] = version.to_bytes(2, "little")  # version needed to extract
    return bytes(data)


@pytest.mark.parametrize("damage", ["version", "deflate"])
def test_a_damaged_zip_is_rejected_not_raised(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "network.zip"
    if damage == "version":
        path.write_bytes(zip_needing_version(64))  # zipfile: NotImplementedError
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("link.csv", "link_id,from_node_id,to_node_id\n" * 200)
        data = bytearray(buffer.getvalue())
        start = data.find(b"link.csv") + len("link.csv")
        data[start + 2:start + 40] = b"\xff" * 38  # a corrupt deflate stream: zlib.error
        path.write_bytes(bytes(data))
    with pytest.raises(ImportRejected) as rejected:
        gmns_files(path)
    assert "not a readable zip or folder" in str(rejected.value.problems[0])
