"""HTML documents as PDF with Chinese text (fpdf2, and a CJK font the install brings).

fpdf2 is pure Python and lays out the simple HTML of a report (headings,
paragraphs, tables, images) without a browser. Chinese needs a CJK font
embedded in the file; the install steps bring WenQuanYi Micro Hei (the
Dockerfile, and so the Helm chart's image, and ``scripts/cjk-font``), and
``QIAO_CJK_FONT`` names another. Only the glyphs used are embedded.

fpdf2 and the font tools under it take a third of a second to import, so they
are imported when the first PDF is made, not by every process that loads the
documents feature (each ``qiao`` command does).
"""

from __future__ import annotations

import os
from pathlib import Path

from qiao.core.errors import BadUserInput, ConfigurationError

FONT_ENV = "QIAO_CJK_FONT"
#: Where Debian/Ubuntu (fonts-wqy-microhei, fonts-noto-cjk) and RHEL put CJK fonts.
FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)


def cjk_font() -> Path:
    """The CJK font PDFs embed: ``QIAO_CJK_FONT``, else the first installed of FONT_PATHS."""
    named = os.environ.get(FONT_ENV)
    if named:
        if not Path(named).is_file():
            raise ConfigurationError(f"{FONT_ENV} names {named}, which is not a file")
        return Path(named)
    for path in FONT_PATHS:
        if Path(path).is_file():
            return Path(path)
    raise ConfigurationError(
        "PDF documents need a CJK font: run scripts/cjk-font (installs fonts-wqy-microhei) "
        f"or set {FONT_ENV} to a .ttf/.ttc file"
    )


def html_to_pdf(html: str, title: str) -> bytes:
    """``html`` (headings, paragraphs, tables, ``<img src="data:...">``) laid out as an A4 PDF."""
    from fpdf import FPDF
    from fpdf.errors import FPDFException

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    font = str(cjk_font())
    # One face for every style: table headings and <b> ask for bold, and a CJK font
    # family rarely ships the other weights, so they print in the regular face.
    for style in ("", "B", "I", "BI"):
        pdf.add_font("cjk", style=style, fname=font)
    pdf.set_font("cjk", size=11)
    pdf.add_page()
    try:
        pdf.write_html(html, font_family="cjk")
    except (FPDFException, ValueError, KeyError) as exc:
        raise BadUserInput(f"this document cannot be laid out as PDF: {exc}") from None
    return bytes(pdf.output())
