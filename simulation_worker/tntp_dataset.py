"""A TNTP network folder as a dataset the domain can import (nodes, links, zones, OD matrix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domain.values import Link, Network, Node, Zone
from simulation_worker.model.tntp import TntpCase, load_tntp_folder


def dataset_from_tntp_folder(folder: Path | str) -> Network:
    """Read a TNTP folder (see `load_tntp_folder`) into a domain network."""
    return dataset_from_tntp(load_tntp_folder(folder))


def dataset_from_tntp(case: TntpCase) -> Network:
    """Zones get population = trips produced and jobs = trips attracted; the OD matrix is kept."""
    net = case.network
    coordinates = {int(i): (float(x), float(y))
                   for i, x, y in zip(net.node_ids, net.node_x, net.node_y, strict=True)}
    nodes = tuple(Node(i, *_finite(xy)) for i, xy in coordinates.items())
    links = tuple(
        Link(id=str(int(net.link_ids[k])), from_node=int(net.link_from[k]),
             to_node=int(net.link_to[k]), capacity=float(net.capacity[k]),
             length=float(net.length[k]), free_flow_time=float(net.free_flow_time[k]),
             b=float(net.bpr_b[k]), power=float(net.bpr_power[k]), toll=float(net.toll[k]),
             link_type=int(net.link_type[k]), lanes=float(net.lanes[k]) or 1.0,
             geometry=_segment(coordinates, int(net.link_from[k]), int(net.link_to[k])))
        for k in range(net.n_links)
    )
    produced, attracted = case.trips.sum(axis=1), case.trips.sum(axis=0)
    zones = tuple(Zone(z.id, z.centroid, float(produced[i]), float(attracted[i]))
                  for i, z in enumerate(case.zones))
    origins, destinations = np.nonzero(case.trips)
    od = tuple((case.zones[o].id, case.zones[d].id, float(case.trips[o, d]))
               for o, d in zip(origins, destinations, strict=True))
    return Network(nodes, links, zones, first_thru_node=net.first_thru_node, od_matrix=od)


def _finite(xy: tuple[float, float]) -> tuple[float, float]:
    x, y = xy
    return (x, y) if np.isfinite(x) and np.isfinite(y) else (0.0, 0.0)


def _segment(coordinates: dict[int, tuple[float, float]], a: int, b: int
             ) -> tuple[tuple[float, float], ...]:
    start, end = _finite(coordinates[a]), _finite(coordinates[b])
    return () if start == end == (0.0, 0.0) else (start, end)
