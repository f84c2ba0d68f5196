"""Runtimes with a controllable clock and a recording plugin, and workers built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from qiao.core.config import Config
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import TEST_SETTINGS
from qiao.core.worker import Worker, WorkerSettings

from .support import START, Recorder


@pytest.fixture(scope="session")
def recorder_plugin() -> Recorder:
    return Recorder()


@pytest.fixture
def recorder(recorder_plugin: Recorder) -> Iterator[Recorder]:
    recorder_plugin.seen.clear()
    recorder_plugin.fail.clear()
    yield recorder_plugin


@pytest.fixture
def qiao_extra_plugins(recorder_plugin: Recorder) -> Sequence[Any]:
    return (recorder_plugin,)


@pytest.fixture
def clock(qiao_clock: TestClock) -> TestClock:
    qiao_clock.set(START)
    return qiao_clock


@pytest.fixture
def runtime(qiao_config: Config, recorder: Recorder, clock: TestClock) -> Iterator[Runtime]:
    rt = Runtime(qiao_config, extra_plugins=[recorder], clock=clock)
    rt.current()
    yield rt
    rt.close()


@pytest.fixture
def make_worker(runtime: Runtime) -> Iterator[Callable[..., Worker]]:
    made: list[Worker] = []

    def make(settings: WorkerSettings = TEST_SETTINGS, name: str | None = None) -> Worker:
        worker = Worker(runtime, settings, name)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def write(runtime: Runtime) -> Callable[..., Any]:
    """``write(lambda records, ctx: ...)`` in one transaction by the system."""

    def _write(fn: Callable[[Any, Any], Any], source: Source = Source.SYSTEM) -> Any:
        with runtime.records.transaction(Actor.system(), source) as ctx:
            return fn(runtime.records, ctx)

    return _write
