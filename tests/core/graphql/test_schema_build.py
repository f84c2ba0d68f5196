"""A schema build runs without Python's cyclic garbage collector, and gives it back.

A build makes tens of thousands of objects that all outlive it; collections during
it free nothing and walk the whole process each time (a third of a build's time in
a serving process). These tests watch the collector through ``gc.callbacks``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pytest

from qiao.core.graphql import service
from qiao.core.graphql.builder import BuiltSchema
from qiao.core.permissions.hiding import NOTHING_HIDDEN
from qiao.core.runtime import Runtime

#: A build reads the catalog only, whatever the database: one backend is enough.
pytestmark = pytest.mark.parametrize("qiao_backend", ["sqlite"], indirect=True)


@contextlib.contextmanager
def collections() -> Iterator[list[int]]:
    """The generations of the collections started while the block runs."""
    started: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)


def _build(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Build the runtime's schema anew; the generations of the collections started
    while the builder worked."""
    build = service.SchemaBuilder.build
    started: list[int] = []

    def watched(builder: service.SchemaBuilder) -> BuiltSchema:
        with collections() as during:
            built = build(builder)
        started.extend(during)
        return built

    monkeypatch.setattr(service.SchemaBuilder, "build", watched)
    schema, plan = service.build_schema(
        runtime.current(), runtime.plugins.graphql_types(), NOTHING_HIDDEN
    )
    assert "Account" in plan.type_names.values()
    assert schema.get_type_by_name("AccountConnection") is not None
    return started


def test_no_collection_runs_during_a_build_and_the_collector_is_on_after(
    qiao_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gc.isenabled()
    assert _build(qiao_runtime, monkeypatch) == []
    assert gc.isenabled()
    with collections() as after:
        gc.collect()
    assert after == [2], "the watch sees a collection when one runs"


def test_a_collector_that_was_off_stays_off(
    qiao_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.disable()
    try:
        _build(qiao_runtime, monkeypatch)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_build_gives_the_collector_back(
    qiao_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object) -> None:
        raise RuntimeError("refused")

    monkeypatch.setattr(service.SchemaBuilder, "build", refuse)
    with pytest.raises(RuntimeError, match="refused"):
        _build(qiao_runtime, monkeypatch)
    assert gc.isenabled()
