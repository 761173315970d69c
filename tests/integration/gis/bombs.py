"""Small files that expand to gigabytes when read: the uploads a hostile tenant would send
(decision 0710). Each is written at test time (a few megabytes at most, in seconds)."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import shapely
from pyogrio.raw import write


def gmns_zip(path: Path, expand_mib: int, lie: bool = False) -> Path:
    """A GMNS zip whose link.csv inflates to `expand_mib` MiB of blanks. With `lie`, its
    headers declare 100 bytes for it (a reader that trusts them checks nothing)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("node.csv", "node_id,x_coord,y_coord\n1,0,0\n2,0.01,0.01\n")
        with archive.open("link.csv", "w", force_zip64=True) as member:
            member.write(b"link_id,from_node_id,to_node_id,length,capacity,free_speed\n")
            blanks = b" " * (1 << 20)
            for _ in range(expand_mib):
                member.write(blanks)
    if lie:
        _declare_small(path, "link.csv")
    return path


def _declare_small(path: Path, name: str) -> None:
    """Rewrite `name`'s uncompressed size as 100 in its local header and its central
    directory entry (in the zip64 extra field where the size lives there)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_at:at + name_at + len(encoded)] == encoded:
                if struct.unpack_from("<I", data, at + size_at)[0] == 0xFFFFFFFF:
                    _zip64_size(data, at, signature == b"PK\x03\x04", len(encoded))
                else:
                    struct.pack_into("<I", data, at + size_at, 100)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def _zip64_size(data: bytearray, at: int, local: bool, name_length: int) -> None:
    extra_length_at = at + (28 if local else 30)
    extra = at + (30 if local else 46) + name_length
    end = extra + struct.unpack_from("<H", data, extra_length_at)[0]
    while extra < end:
        tag, size = struct.unpack_from("<HH", data, extra)
        if tag == 0x0001:  # zip64: the uncompressed size comes first
            struct.pack_into("<Q", data, extra + 4, 100)
            return
        extra += 4 + size


def osm_pbf(path: Path, blocks: int, nodes_per_block: int = 10_000_000) -> Path:
    """An OSM PBF of `blocks` data blocks of `nodes_per_block` nodes each (ids ascending, all
    at 0,0): some 30 kB a block on disk, and a node location index of 8 bytes a node for any
    reader that keeps locations, as a network import must."""
    def field(number: int, wire: int) -> bytes:
        return _varint(number << 3 | wire)

    def sized(number: int, payload: bytes) -> bytes:
        return field(number, 2) + _varint(len(payload)) + payload

    def blob(kind: str, message: bytes) -> bytes:
        body = field(2, 0) + _varint(len(message)) + sized(3, zlib.compress(message, 9))
        header = sized(1, kind.encode()) + field(3, 0) + _varint(len(body))
        return struct.pack(">I", len(header)) + header + body

    out = [blob("OSMHeader", sized(4, b"OsmSchema-V0.6") + sized(4, b"DenseNodes"))]
    for block in range(blocks):
        first = block * nodes_per_block + 1
        ids = _varint(first * 2) + b"\x02" * (nodes_per_block - 1)  # zigzag deltas: first, +1...
        zeros = b"\x00" * nodes_per_block
        dense = sized(1, ids) + sized(8, zeros) + sized(9, zeros)
        out.append(blob("OSMData", sized(1, sized(1, b"")) + sized(2, sized(2, dense))))
    path.write_bytes(b"".join(out))
    return path


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def shapefile_zip(path: Path, features: int) -> Path:
    """A zip of a Shapefile `links` layer claiming `features` features, every index entry
    pointing at the same null shape and every attribute blank: it compresses a
    thousandfold, and a reader that loads the layer's columns allocates per feature."""
    folder = path.parent / f"{path.stem}-layer"
    folder.mkdir()
    _one_feature(folder / "links.shp")
    shp, shx, dbf = (folder / f"links.{suffix}" for suffix in ("shp", "shx", "dbf"))
    first_record = shx.read_bytes()[100:108]  # offset and length of record 1, big-endian
    header = bytearray(shx.read_bytes()[:100])
    struct.pack_into(">i", header, 24, (100 + 8 * features) // 2)  # file length in words
    table = bytearray(dbf.read_bytes())
    record_length = struct.unpack_from("<H", table, 10)[0]
    header_length = struct.unpack_from("<H", table, 8)[0]
    struct.pack_into("<I", table, 4, features)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.write(shp, "links.shp")
        archive.write(folder / "links.prj", "links.prj")
        with archive.open("links.shx", "w", force_zip64=True) as member:
            member.write(bytes(header))
            _repeat(member, first_record, features)
        with archive.open("links.dbf", "w", force_zip64=True) as member:
            member.write(bytes(table[:header_length]))
            _repeat(member, b" " * record_length, features)
            member.write(b"\x1a")
    return path


def _repeat(member: IO[bytes], record: bytes, count: int) -> None:
    per_chunk = max(1, (1 << 20) // len(record))
    chunk = record * per_chunk
    for _ in range(count // per_chunk):
        member.write(chunk)
    member.write(record * (count % per_chunk))


def _one_feature(path: Path) -> None:
    """A one-feature Shapefile `links` layer in the default mapping's fields."""
    write(str(path), geometry=np.array([shapely.to_wkb(shapely.LineString([(0, 0), (0.01, 0.01)]))],
                                       dtype=object),
          field_data=[np.array(["a"], dtype=object), np.array([1]), np.array([2]),
                      np.array([1000.0])],
          fields=["link_id", "from_node", "to_node", "capacity"], driver="ESRI Shapefile",
          geometry_type="LineString", crs="EPSG:4326")
