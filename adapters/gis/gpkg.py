"""Write tables to one GeoPackage (via pyogrio), with QGIS layer styles beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyogrio.raw import write

from adapters.gis.tables import Table

STYLE_COLUMNS = ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
                 "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner",
                 "ui", "update_time")


def write_geopackage(path: Path, tables: Sequence[Table],
                     styles: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Each table as a layer (WGS84); `styles` maps a layer to (style name, QML)."""
    for index, table in enumerate(tables):
        geometries = None
        if table.geometry_type is not None:
            geometries = shapely.to_wkb(np.array(table.geometries, dtype=object))
        write(str(path), geometries, [_array(v) for v in table.columns.values()],
              fields=list(table.columns), layer=table.name, driver="GPKG",
              geometry_type=table.geometry_type,
              crs="EPSG:4326" if table.geometry_type else None, append=index > 0)
    if styles:
        write(str(path), None, [_array(v) for v in _style_rows(styles).values()],
              fields=list(STYLE_COLUMNS), layer="layer_styles", driver="GPKG",
              append=True, layer_options={"FID": "id"})


def _style_rows(styles: Mapping[str, tuple[str, str]]) -> dict[str, list[Any]]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    rows = [("", "", layer, "geom", name, qml, "", True, f"Cartolog: {name}", "", "", now)
            for layer, (name, qml) in styles.items()]
    return {column: [row[i] for row in rows] for i, column in enumerate(STYLE_COLUMNS)}


def _array(values: list[Any]) -> np.ndarray:
    """A column: floats and ints as numbers (None as NaN / object), the rest as text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present) \
            and len(present) == len(values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array(values, dtype=object)
