"""Fixtures for the delivery tests: a local collector and a Runtime on the test Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bridge.delivery.runtime import STOPPING, Runtime, set_runtime
from bridge.devtools.collector import Collector
from tests.delivery import support


@pytest.fixture
def make_runtime(redis_url: str, collector: Collector) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def build(**extra: str) -> Runtime:
        runtime = Runtime(support.settings(redis_url, collector.url, **extra))
        made.append(runtime)
        set_runtime(runtime)
        return runtime

    yield build
    STOPPING.clear()
    set_runtime(None)
    for runtime in made:
        runtime.close()


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()
