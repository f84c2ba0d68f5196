"""Number patterns: literal text, date parts and one sequence, e.g. ``GD-{YYYY}-{seq:6}``.

The date parts of a pattern also say when its sequence restarts: a pattern
with ``{YYYY}`` counts from 1 each year, one with ``{YYYY}{MM}`` each month,
one without date parts never restarts. The counter is kept per *period*, the
text the date parts give for the record's creation date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE_PARTS = {
    "YYYY": lambda d: f"{d.year:04d}",
    "YY": lambda d: f"{d.year % 100:02d}",
    "MM": lambda d: f"{d.month:02d}",
    "DD": lambda d: f"{d.day:02d}",
}
PieceKind = Literal["text", "date", "seq"]
_SEQ = re.compile(r"seq(?::([1-9][0-9]?))?")
#: The widest sequence a pattern may ask for, and the most characters a number may have.
MAX_WIDTH = 18
MAX_LENGTH = 64


@dataclass(frozen=True)
class NumberPattern:
    """A checked pattern: its pieces in order and the sequence's zero-padded width."""

    text: str
    #: In order: ("text", literal), ("date", a date part's name) or ("seq", "seq"). Tagged,
    #: so literal text that reads like a date part ("YY-") stays text.
    pieces: tuple[tuple[PieceKind, str], ...]
    width: int

    @classmethod
    def parse(cls, text: str) -> NumberPattern:
        """Check ``text``; raises ValueError saying what is wrong with it."""
        pieces: list[tuple[PieceKind, str]] = []
        width = 0
        seqs = 0
        end = 0
        for match in _TOKEN.finditer(text):
            literal = text[end : match.start()]
            _check_literal(literal, text)
            if literal:
                pieces.append(("text", literal))
            token = match.group(1)
            seq = _SEQ.fullmatch(token)
            if seq is not None:
                seqs += 1
                width = int(seq.group(1) or 1)
                pieces.append(("seq", "seq"))
            elif token in _DATE_PARTS:
                pieces.append(("date", token))
            else:
                raise ValueError(
                    f"unknown part {{{token}}} in number pattern {text!r}; "
                    "use {YYYY}, {YY}, {MM}, {DD} and one {seq} or {seq:N}"
                )
            end = match.end()
        literal = text[end:]
        _check_literal(literal, text)
        if literal:
            pieces.append(("text", literal))
        if seqs != 1:
            raise ValueError(f"number pattern {text!r} needs exactly one {{seq}} or {{seq:N}}")
        if width > MAX_WIDTH:
            raise ValueError(f"{{seq:{width}}} is too wide; at most {MAX_WIDTH} digits")
        pattern = cls(text, tuple(pieces), width)
        if len(pattern.render(dt.date(2000, 1, 1), 0)) > MAX_LENGTH:
            raise ValueError(f"numbers of pattern {text!r} are longer than {MAX_LENGTH}")
        return pattern

    @property
    def resets(self) -> str:
        """When the sequence restarts: ``never``, ``yearly``, ``monthly`` or ``daily``."""
        parts = {name for kind, name in self.pieces if kind == "date"}
        if "DD" in parts:
            return "daily"
        if "MM" in parts:
            return "monthly"
        if parts & {"YYYY", "YY"}:
            return "yearly"
        return "never"

    def period(self, day: dt.date) -> str:
        """The counter's period for a record created on ``day`` ('' when it never resets)."""
        return {
            "never": "",
            "yearly": f"{day.year:04d}",
            "monthly": f"{day.year:04d}-{day.month:02d}",
            "daily": day.isoformat(),
        }[self.resets]

    def render(self, day: dt.date, value: int) -> str:
        """The number for sequence value ``value`` of a record created on ``day``."""
        out = []
        for kind, piece in self.pieces:
            if kind == "seq":
                out.append(f"{value:0{self.width}d}")
            elif kind == "date":
                out.append(_DATE_PARTS[piece](day))
            else:
                out.append(piece)
        return "".join(out)

    def max_length(self) -> int:
        """How long the numbers grow before the sequence needs more digits than its width."""
        return len(self.render(dt.date(2000, 1, 1), 0))


def _check_literal(literal: str, text: str) -> None:
    if "{" in literal or "}" in literal:
        raise ValueError(f"unbalanced brace in number pattern {text!r}")
