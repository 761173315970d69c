"""QGIS styles (QML) that a GeoPackage carries in its `layer_styles` table, which QGIS reads
when a layer is opened: links coloured by volume/capacity, zones by accessibility."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

LINK_CLASSES = ((0.0, 0.5, "26,150,65", "0.6"), (0.5, 0.9, "253,174,97", "1.0"),
                (0.9, 1.0e9, "215,25,28", "1.6"))
ZONE_CLASSES = ((-1.0e9, 5.0, "237,248,251", ""), (5.0, 8.0, "140,150,198", ""),
                (8.0, 1.0e9, "110,1,107", ""))


def _symbol(index: int, kind: str, colour: str, width: str) -> str:
    if kind == "line":
        props = (f'<prop k="line_color" v="{colour},255"/>'
                 f'<prop k="line_width" v="{width}"/>')
        layer = f'<layer class="SimpleLine" enabled="1" locked="0" pass="0">{props}</layer>'
    else:
        props = (f'<prop k="color" v="{colour},180"/>'
                 '<prop k="outline_color" v="80,80,80,255"/>')
        layer = f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">{props}</layer>'
    return (f'<symbol name="{index}" type="{kind}" alpha="1" clip_to_extent="1" '
            f'force_rhr="0">{layer}</symbol>')


def graduated(attribute: str, kind: str, classes: tuple[tuple[float, float, str, str], ...]
              ) -> str:
    """A QML document: a graduated renderer over `attribute`."""
    ranges = "".join(
        f'<range lower="{low}" upper="{high}" symbol="{i}" label="{low:g} - {high:g}" '
        f'render="true"/>' for i, (low, high, _, _) in enumerate(classes))
    symbols = "".join(_symbol(i, kind, colour, width)
                      for i, (_, _, colour, width) in enumerate(classes))
    return ('<!DOCTYPE qgis PUBLIC \'http://mrcc.com/qgis.dtd\' \'SYSTEM\'>'
            '<qgis version="3.28.0" styleCategories="Symbology">'
            f'<renderer-v2 type="graduatedSymbol" attr={quoteattr(attribute)} '
            'graduatedMethod="GraduatedColor" symbollevels="0" enableorderby="0">'
            f"<ranges>{ranges}</ranges><symbols>{symbols}</symbols></renderer-v2></qgis>")


RUN_STYLES = {"links": ("volume_capacity", graduated("volume_capacity", "line", LINK_CLASSES)),
              "zones": ("accessibility", graduated("accessibility", "fill", ZONE_CLASSES))}
