"""Entity tables and their migrations, derived from the metadata.

Sits above :mod:`qiao.core.metadata` (it reads entity definitions) and
:mod:`qiao.core.storage` (engine, kernel tables, column types), which know
nothing of each other's direction.
"""
