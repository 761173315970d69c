"""Seeded random cities: networks and demand nobody tuned the solver on. Used by
``tests/unit/model/test_random_cities.py`` and ``bench/random_cities.py`` (tests may import
the bench; the bench may not import the tests).

A ``w x h`` grid (6 to 12 each way) of two-way streets, a quarter as many one-way diagonals,
one street in twenty doubled by a parallel road, lengths 0.3-2 km at 30-90 km/h, capacities
300-2,500, BPR b = 0.15 with power 4 (three links in five), 5 or 6, and one link in ten of
constant cost (b = 0, like a connector). 8 to 24 zones on random nodes, 70 % of their pairs
with up to ``120 * scale`` trips. At scale 1 the busiest link carries 1-3 times its capacity,
at 2.5 up to 6 times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from simulation_worker.model import (
    AssignmentSettings,
    ExplicitDemand,
    ModelInput,
    Zone,
    make_network,
)

# Link types (``zoned_city`` keeps them): streets across and along, parallel roads,
# connectors.
ACROSS, ALONG, PARALLEL, CONNECTOR = 1, 2, 3, 9


def streets(w: int, h: int, node: Callable[[int, int], int]
            ) -> tuple[list[tuple[int, int]], list[int]]:
    """A ``w x h`` grid's two-way streets as (from, to) node pairs, row by row, and their
    types (``ACROSS`` or ``ALONG``)."""
    pairs: list[tuple[int, int]] = []
    types: list[int] = []
    for y in range(h):
        for x in range(w):
            if x + 1 < w:
                pairs += [(node(x, y), node(x + 1, y)), (node(x + 1, y), node(x, y))]
                types += [ACROSS, ACROSS]
            if y + 1 < h:
                pairs += [(node(x, y), node(x, y + 1)), (node(x, y + 1), node(x, y))]
                types += [ALONG, ALONG]
    return pairs, types


def random_city(seed: int, scale: float = 1.0, gap: float = 1e-6) -> ModelInput:
    """The seeded city, with Algorithm B to ``gap`` (at most 400 iterations)."""
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(6, 13, 2))

    def node(x: int, y: int) -> int:
        return y * w + x + 1

    pairs, _ = streets(w, h, node)
    for _ in range(w * h // 4):
        x, y = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
        a, b = node(x, y), node(x + 1, y + 1)
        pairs.append((a, b) if rng.random() < 0.5 else (b, a))
    for k in rng.choice(len(pairs), len(pairs) // 20, replace=False):
        pairs.append(pairs[int(k)])
    m = len(pairs)
    length = rng.uniform(0.3, 2.0, m)
    free_flow = 60 * length / rng.uniform(30, 90, m)
    b = np.where(rng.random(m) < 0.1, 0.0, 0.15)
    power = rng.choice([4.0, 4.0, 4.0, 5.0, 6.0], m)
    capacity = rng.uniform(300, 2500, m)
    network = make_network(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
                           capacity, length, free_flow, bpr_b=b, bpr_power=power,
                           node_ids=np.arange(1, w * h + 1))
    count = int(rng.integers(8, 25))
    centroids = rng.choice(np.arange(1, w * h + 1), count, replace=False)
    zones = tuple(Zone(i + 1, int(c), 1.0, 1.0) for i, c in enumerate(centroids))
    trips = scale * rng.uniform(0, 120, (count, count)) * (rng.random((count, count)) < 0.7)
    np.fill_diagonal(trips, 0.0)
    return ModelInput(network=network, zones=zones, demand=ExplicitDemand(trips),
                      assignment=AssignmentSettings(relative_gap=gap, max_iterations=400))




def zoned_city(seed: int, scale: float = 4.0, gap: float = 1e-8) -> ModelInput:
    """A city laid out as TNTP networks are: zones are nodes ``1..z`` of their own, below
    the first thru node (no path passes through one), each tied to two random intersections
    by constant-cost connectors both ways; a 5-10 x 5-10 grid of two-way streets (types
    ``ACROSS`` and ``ALONG``), one street in ten doubled by a ``PARALLEL`` road, and one link
    in ten tolled."""
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(5, 11, 2))
    zones = int(rng.integers(5, 16))

    def node(x: int, y: int) -> int:
        return zones + y * w + x + 1

    pairs, types = streets(w, h, node)
    for k in rng.choice(len(pairs), len(pairs) // 10, replace=False):
        pairs.append(pairs[int(k)])
        types.append(PARALLEL)
    for zone in range(1, zones + 1):
        for grid in rng.choice(w * h, 2, replace=False):
            pairs += [(zone, zones + int(grid) + 1), (zones + int(grid) + 1, zone)]
            types += [CONNECTOR, CONNECTOR]
    m = len(pairs)
    kind = np.array(types, dtype=np.int64)
    connector = kind == CONNECTOR
    length = rng.uniform(0.3, 2.0, m)
    free_flow = np.where(connector, 0.5, 60 * length / rng.uniform(30, 90, m))
    capacity = np.where(connector, 1e5, rng.uniform(300, 2500, m))
    toll = np.where(rng.random(m) < 0.1, rng.uniform(0, 3, m), 0.0)
    network = make_network(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]),
                           capacity, length, free_flow, bpr_b=np.where(connector, 0.0, 0.15),
                           bpr_power=rng.choice([4.0, 5.0], m), toll=toll,
                           node_ids=np.arange(1, zones + w * h + 1), first_thru_node=zones + 1)
    network = replace(network, link_type=kind)
    trips = scale * rng.uniform(0, 150, (zones, zones)) * (rng.random((zones, zones)) < 0.8)
    np.fill_diagonal(trips, 0.0)
    return ModelInput(network=network, zones=tuple(Zone(z, z, 1.0, 1.0)
                                                   for z in range(1, zones + 1)),
                      demand=ExplicitDemand(trips),
                      assignment=AssignmentSettings(relative_gap=gap, max_iterations=400))
