"""Human-readable numbers (``GD-2026-000042``) given to records from a declared pattern.

A manifest's ``numbering:`` section names an entity's string field and a
pattern (docs/numbering.md). The number is taken from a counter row in the
kernel table ``qiao_number_sequence`` in the transaction that creates the
record, so a rolled-back create gives its number back (no gaps) and two
concurrent creates wait for each other on the counter's row (no duplicates).
"""

from qiao.core.numbering.pattern import NumberPattern

__all__ = ["NumberPattern"]
