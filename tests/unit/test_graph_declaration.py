"""deploy()'s treatment of CPython's cyclic collector while it declares a graph."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ringzero.stack import GC_THRESHOLDS, graph_declaration


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()  # what the tests froze goes back to the oldest generation
    if enabled:
        gc.enable()
    else:
        gc.disable()


class Node:
    """A cyclic object, as the SDK's futures and tasks are."""

    def __init__(self) -> None:
        self.me = self


def test_the_collector_is_paused_while_declaring_and_the_declaration_frozen_after() -> None:
    gc.set_threshold(700, 10, 10)
    gc.enable()
    frozen_before = gc.get_freeze_count()
    with graph_declaration():
        assert not gc.isenabled()
        declared = [Node() for _ in range(1000)]
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.isenabled() and gc.get_threshold() == GC_THRESHOLDS
    # the declared objects left the generations a collection traverses (and a few more)
    assert gc.get_freeze_count() - frozen_before >= len(declared)
    assert not any(gc.is_tracked(n) and n in gc.get_objects(generation=2) for n in declared[:3])
    # what the program makes afterwards is collected as usual
    later = Node()
    assert later in gc.get_objects(generation=0)


def test_the_collector_is_back_on_when_the_declaration_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), graph_declaration():
        raise RuntimeError("a spec refused")
    assert gc.isenabled()


def test_a_programs_own_settings_are_left_alone() -> None:
    gc.set_threshold(5_000_000, 20, 20)  # higher than ringzero's: kept
    with graph_declaration():
        pass
    assert gc.get_threshold() == (5_000_000, 20, 20)
    gc.disable()  # a program that runs without the collector: not switched on, nothing frozen
    frozen_before = gc.get_freeze_count()
    with graph_declaration():
        Node()
    assert not gc.isenabled() and gc.get_freeze_count() == frozen_before
