"""Coordinates in any CRS PROJ knows → WGS84 longitude/latitude, the only CRS Cartolog stores
(decision 0718). Planners' files are often in a projected CRS (UTM, a state plane, the
British National Grid): an import reprojects them rather than refusing them.

PROJ's EPSG database ships inside the pyproj wheel: nothing is fetched over the network.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

WGS84 = CRS.from_epsg(4326)
Points = NDArray[np.float64]  # shape (n, 2): x (longitude or easting), y (latitude or northing)
Reproject = Callable[[Points], Points]


class UnknownCrs(ValueError):
    """A CRS that PROJ cannot read, or one with no transformation to WGS84."""


def parsed(crs: str) -> CRS:
    """The CRS named by `crs` (EPSG:27700, 27700, a WKT or PROJ string), else UnknownCrs."""
    text = crs.strip()
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        found = CRS.from_user_input(text)
    except CRSError:
        raise UnknownCrs(f"{crs[:60]!r} is not a coordinate reference system PROJ knows "
                         "(give an EPSG code such as EPSG:27700)") from None
    if not (found.is_geographic or found.is_projected):
        raise UnknownCrs(f"{crs[:60]!r} ({found.name}) is not a horizontal CRS: give the "
                         "geographic or projected CRS of the x and y coordinates")
    return found


def is_wgs84(crs: str) -> bool:
    """Whether `crs` is WGS84 longitude/latitude (EPSG:4326 or OGC:CRS84)."""
    return parsed(crs).equals(WGS84, ignore_axis_order=True)


def same_crs(first: str, second: str) -> bool:
    """Whether two CRS names mean the same CRS (axis order aside)."""
    return parsed(first).equals(parsed(second), ignore_axis_order=True)


def to_wgs84(crs: str) -> Reproject | None:
    """A function taking (n, 2) points in `crs` to WGS84 (longitude, latitude); None when
    `crs` already is WGS84. UnknownCrs when it cannot be read or transformed."""
    return None if is_wgs84(crs) else _transformer(parsed(crs).to_wkt())


@lru_cache(maxsize=16)
def _transformer(wkt: str) -> Reproject:
    try:
        transformer = Transformer.from_crs(CRS.from_wkt(wkt), WGS84, always_xy=True)
    except (CRSError, ProjError) as error:
        raise UnknownCrs(f"no transformation to WGS84: {str(error)[:200]}") from None

    def reproject(points: Points) -> Points:
        xs, ys = transformer.transform(points[:, 0], points[:, 1], errcheck=False)
        return np.column_stack([np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)])

    return reproject


def lon_lat(x: float, y: float) -> bool:
    """Whether (x, y) can be a WGS84 longitude and latitude."""
    return -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0
