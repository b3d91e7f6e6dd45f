"""The enrolment QR code, drawn on the server as inline SVG (segno, pure Python): no
image request, no CDN, and the secret never leaves the page it is shown on."""

from __future__ import annotations

import segno
from markupsafe import Markup


def qr_svg(uri: str) -> Markup:
    """An ``<svg>`` element of ``uri``; it holds no text of its own (only the modules)."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=4, dark="#000", light="#fff", border=4, svgclass="qr", title=None)
    return Markup(svg)  # noqa: S704 - segno's own markup; the URI is encoded in the modules
