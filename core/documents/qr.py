"""QR codes for links, as SVG text and PNG bytes (segno: pure Python, no image library).

Error correction level M (15 % of the code may be soiled or covered), which a
label on a machine in a workshop needs; segno raises it further when the
data leaves room.
"""

from __future__ import annotations

import io

import segno


def qr_svg(data: str, scale: int = 4) -> str:
    """An SVG document of the QR code for ``data`` (no XML declaration: it can be inlined)."""
    code = segno.make(data, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=scale, xmldecl=False, svgns=True, title=None)
    return out.getvalue().decode("utf-8")


def qr_png(data: str, scale: int = 8) -> bytes:
    """A PNG of the QR code for ``data``."""
    code = segno.make(data, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale)
    return out.getvalue()
