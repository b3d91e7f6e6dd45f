"""Trend charts as inline SVG, drawn on the server: no script, no library, no CDN.

Each chart has a ``<title>`` and ``aria-labelledby`` for screen readers, scales to the
page's width (``viewBox``), and keeps under 15 KB however many periods (a year of weeks is
53 bars per series). The table under each chart carries the same numbers for anyone the
picture does not serve.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from telemed.i18n import gettext
from telemed.uptake.service import ChartData

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 44
COLOURS = ("#1f5fbf", "#e07b00", "#2e8540")
MAX_BYTES = 15_000


def _nice_max(value: float) -> float:
    """A round top for the axis: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def render(chart: ChartData) -> Markup:
    n = max(1, len(chart.labels))
    values = [v for s in chart.series for v in s.values if v is not None]
    top = _nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / n

    def y(v: float) -> float:
        return TOP + plot_h - v / top * plot_h

    title = gettext("%(title)s, by period") % {"title": gettext(chart.title)}
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart.key}-t" id="{chart.key}">',
        f'<title id="{chart.key}-t">{escape(title)}</title>',
    ]
    for frac in (0, 0.5, 1):  # axis lines and their values
        yy = y(top * frac)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.0f}" y2="{yy:.0f}" stroke="#ccc"/>'
            f'<text x="{LEFT - 4}" y="{yy + 4:.0f}" text-anchor="end" font-size="14">'
            f"{top * frac:g}</text>"
        )
    every = max(1, -(-n // 6))  # at most six labels under the axis
    for i, name in enumerate(chart.labels):
        if i % every == 0:
            out.append(
                f'<text x="{LEFT + step * (i + 0.5):.0f}" y="{HEIGHT - BOTTOM + 17}" '
                f'text-anchor="middle" font-size="14">{escape(name)}</text>'
            )
    k = len(chart.series)
    for j, series in enumerate(chart.series):
        colour = COLOURS[j % len(COLOURS)]
        if chart.kind == "bars":
            bar = step * 0.8 / k
            for i, v in enumerate(series.values):
                if v:
                    x = LEFT + step * i + step * 0.1 + bar * j
                    out.append(
                        f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar:.1f}" '
                        f'height="{TOP + plot_h - y(v):.1f}" fill="{colour}"/>'
                    )
        else:
            points = [
                f"{LEFT + step * (i + 0.5):.1f},{y(v):.1f}"
                for i, v in enumerate(series.values)
                if v is not None
            ]
            if points:
                out.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    'stroke-width="2"/>'
                )
        lx = LEFT + j * 190
        name = escape(gettext(series.name))
        out.append(
            f'<rect x="{lx}" y="{HEIGHT - 15}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{HEIGHT - 4}" font-size="14">{name}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text in it is escaped above
