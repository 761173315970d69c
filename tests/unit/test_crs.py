"""Coordinates from the CRS a file names to WGS84 (adapters/gis/crs.py, decision 0718)."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.gis.crs import UnknownCrs, is_wgs84, same_crs, to_wgs84


@pytest.mark.parametrize("crs", ["EPSG:4326", "epsg:4326", "4326", "OGC:CRS84",
                                 "urn:ogc:def:crs:EPSG::4326"])
def test_wgs84_in_any_spelling_needs_no_reprojection(crs: str) -> None:
    assert is_wgs84(crs) and to_wgs84(crs) is None


@pytest.mark.parametrize(("crs", "point", "lon_lat"), [
    # the British National Grid's true origin (49 N, 2 W) is at (400000, -100000)
    ("EPSG:27700", (400000.0, -100000.0), (-2.0, 49.0)),
    ("27700", (400000.0, -100000.0), (-2.0, 49.0)),
    ("EPSG:7405", (400000.0, -100000.0), (-2.0, 49.0)),  # the grid with heights: compound
    # UTM 33N's central meridian (15 E) at its false easting
    ("+proj=utm +zone=33 +datum=WGS84", (500000.0, 0.0), (15.0, 0.0)),
    ("EPSG:3857", (0.0, 0.0), (0.0, 0.0)),
])
def test_projected_points_land_where_the_projection_defines_them(
        crs: str, point: tuple[float, float], lon_lat: tuple[float, float]) -> None:
    reproject = to_wgs84(crs)
    assert reproject is not None
    (found,) = reproject(np.array([point])).tolist()
    assert found == pytest.approx(lon_lat, abs=2e-3)  # a datum shift of some tens of metres


@pytest.mark.parametrize(("crs", "reason"), [
    ("EPSG:0", "is not a coordinate reference system PROJ knows"),
    ("x" * 5000, "is not a coordinate reference system PROJ knows"),
    ("EPSG:5703", "(NAVD88 height) is not a horizontal CRS"),
    ("EPSG:4978", "is not a horizontal CRS"),  # geocentric x, y, z
    ("IAU_2015:30100", "no transformation to WGS84"),  # the Moon
])
def test_a_crs_that_cannot_place_x_and_y_on_earth_is_refused(crs: str, reason: str) -> None:
    with pytest.raises(UnknownCrs, match=reason.replace("(", r"\(").replace(")", r"\)")):
        to_wgs84(crs)


def test_same_crs_ignores_spelling_and_axis_order() -> None:
    assert same_crs("EPSG:27700", "27700")
    assert same_crs("EPSG:4326", "OGC:CRS84")
    assert not same_crs("EPSG:27700", "EPSG:32630")
