"""Dataset: an imported base network and its zones, stored by claim check."""

from __future__ import annotations

from uuid import UUID

from domain.base import TenantAggregate
from domain.errors import InvalidCommand
from domain.rules import label_problem
from domain.values import Actor

SOURCE_FORMATS = ("geojson", "tntp", "gmns", "gpkg", "shapefile", "osm")


class Dataset(TenantAggregate):
    """The event holds the blob's sha256 and counts; the geometry lives in the blob store."""

    class Imported(TenantAggregate.Created):
        name: str
        network_sha256: str
        node_count: int
        link_count: int
        zone_count: int
        source_format: str

    def __init__(
        self, tenant_id: str, name: str, network_sha256: str, node_count: int,
        link_count: int, zone_count: int, source_format: str,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.network_sha256 = network_sha256
        self.node_count = node_count
        self.link_count = link_count
        self.zone_count = zone_count
        self.source_format = source_format

    @classmethod
    def record_import(
        cls, dataset_id: UUID, tenant_id: str, name: str, network_sha256: str,
        counts: tuple[int, int, int], source_format: str, by: Actor,
    ) -> Dataset:
        """Record that a network was imported and stored under its content hash."""
        problem = label_problem("dataset", name)
        if problem:
            raise InvalidCommand(problem)
        if source_format not in SOURCE_FORMATS:
            raise InvalidCommand(f"source format must be one of {', '.join(SOURCE_FORMATS)}")
        nodes, links, zones = counts
        return cls._start(
            cls.Imported, dataset_id, tenant_id, by, name=name,
            network_sha256=network_sha256, node_count=nodes, link_count=links,
            zone_count=zones, source_format=source_format,
        )
