"""Alembic migrations of the kernel's own tables (see :mod:`qiao.core.storage.system`)."""
