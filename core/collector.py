"""CPython's cycle collector set for a ``qiao`` process.

A started deployment keeps hundreds of thousands of objects for its whole life: the
metadata, SQLAlchemy's tables and compiled statements, the plugins' dictionaries
(jieba's alone holds some 350,000 words). With CPython's default of a young-generation
collection every 700 container allocations, a bulk write (an import's 500-row batches,
each row a handful of dicts through the hooks, the audit log and the outbox) triggers
collections that keep walking those survivors: about a fifth of a 10,000-row lead import
went to the collector (docs/benchmarks.md). Collecting the young generation every
10,000 allocations keeps cyclic garbage as collectable and runs the collector a
fourteenth as often. The older generations keep their default ratios.

Only the ``qiao`` processes set it (the console command and each ``serve --workers``
process): a program embedding Qiao keeps its own interpreter's settings.
"""

from __future__ import annotations

import gc

#: Container allocations between two collections of the young generation.
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_for_service() -> None:
    """Collect the young generation every :data:`YOUNG_GENERATION_THRESHOLD` allocations,
    unless the interpreter was already set to collect less often (or not at all)."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_GENERATION_THRESHOLD:
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
