"""`kodad serve` tunes Python's cyclic garbage collector for a process that keeps many
objects: start-up's are frozen out of its walks, it runs less often, and it still collects
every cycle."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from kodad.server import GC_THRESHOLD, collect_less


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_collections_are_rarer(collector: None) -> None:
    assert gc.get_threshold()[0] < GC_THRESHOLD  # Python's default: 700
    collect_less()
    assert gc.get_threshold() == (GC_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 10_000  # this process's modules, among others


def test_cycles_made_after_start_up_are_still_collected_without_an_explicit_collect(
    collector: None,
) -> None:
    collect_less()
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    gone = weakref.ref(a)
    del a, b
    young = [[] for _ in range(GC_THRESHOLD * 2)]  # enough new objects to trigger a collection
    assert gone() is None
    assert len(young) == GC_THRESHOLD * 2
