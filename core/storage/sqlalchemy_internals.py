"""The one place that reaches into SQLAlchemy's private attributes.

Compiled reads are rendered once to the driver's SQL text and parameters and
then executed with ``exec_driver_sql`` on every request, skipping SQLAlchemy's
per-execution compilation (docs/graphql.md). That needs the bind processors
SQLAlchemy would apply to each parameter, which only a compiled statement's
private attribute holds. Keeping the access here makes a SQLAlchemy upgrade a
review of this module; tests/test_architecture.py fails when another module
reaches for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.sql.compiler import Compiled


def bind_processors(compiled: Compiled) -> Mapping[str, Callable[[Any], Any]]:
    """Each bound parameter's conversion to the driver's value, by parameter name."""
    processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors  # type: ignore[attr-defined]
    return processors
