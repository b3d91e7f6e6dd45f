"""A light static map: Lesotho's ten districts as simplified polygons (a schematic, not
survey boundaries), coloured by requests in the filtered range. Each district links to the
dashboard filtered to it, and names its number in its ``<title>``; the district table on
the page carries the same numbers."""

from __future__ import annotations

from dataclasses import replace

from markupsafe import Markup, escape

from telemed.uptake.filters import Filters

# Simplified outlines in a 300 x 310 box, north up (traced by hand, roughly in place).
DISTRICTS: dict[str, tuple[str, str]] = {
    "BB": ("Butha-Buthe", "150,10 210,15 200,70 150,65"),
    "MK": ("Mokhotlong", "210,15 290,70 280,140 200,120 200,70"),
    "LE": ("Leribe", "80,50 150,10 150,65 200,70 200,95 120,100"),
    "BE": ("Berea", "50,95 80,50 120,100 130,140 60,150"),
    "TT": ("Thaba-Tseka", "130,140 120,100 200,95 200,120 280,140 250,190 150,190"),
    "MS": ("Maseru", "30,150 60,150 130,140 150,190 120,230 80,222 40,210"),
    "MF": ("Mafeteng", "10,210 40,210 80,222 70,260 20,255"),
    "MH": ("Mohale's Hoek", "80,222 120,230 150,190 180,220 150,280 70,260"),
    "QT": ("Quthing", "150,280 180,220 210,250 200,295 160,300"),
    "QN": ("Qacha's Nek", "150,190 250,190 260,230 210,250 180,220"),
}
SHADES = ("#eef2f7", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")


def shade(value: float, top: float) -> str:
    """Grey-blue for none, then five steps of blue up to the busiest district."""
    if value <= 0 or top <= 0:
        return SHADES[0]
    return SHADES[min(5, 1 + int(value / top * 4.999))]


def render(requests: dict[str, float], filters: Filters) -> Markup:
    top = max(requests.values(), default=0)
    out = [
        '<svg class="map" viewBox="0 0 300 310" role="img" aria-labelledby="map-t">'
        '<title id="map-t">Requests by district (darker: more)</title>'
    ]
    for code, (name, points) in DISTRICTS.items():
        value = requests.get(code, 0)
        href = "/coordinator/uptake?" + _query(filters, code)
        out.append(
            f'<a href="{escape(href)}"><polygon points="{points}" fill="{shade(value, top)}" '
            f'stroke="#555" stroke-width="1"><title>{escape(name)}: {value:,.0f} requests'
            "</title></polygon></a>"
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it is escaped above


def _query(filters: Filters, district: str) -> str:
    return replace(filters, district=district, facility=None).query()
