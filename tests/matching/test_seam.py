"""The matching seam's process hygiene: the cyclic garbage collector it pauses comes back."""

from __future__ import annotations

import gc

import pytest

from recon_pipeline.matching.seam import cyclic_collector_paused


class _Cycle:
    def __init__(self):
        self.me = self


def test_the_collector_is_paused_inside_and_back_after_matching_even_when_it_fails():
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with cyclic_collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("matching failed")
    assert gc.isenabled()


def test_the_cyclic_garbage_of_the_matching_is_freed_when_it_ends():
    # With automatic collection off around it, only the block's own collection can free them.
    gc.disable()
    try:
        with cyclic_collector_paused():
            for _ in range(1000):
                _Cycle()
            assert sum(isinstance(o, _Cycle) for o in gc.get_objects()) >= 1000  # nothing collected inside
        assert not gc.isenabled()  # the caller's setting is kept
        assert not any(isinstance(o, _Cycle) for o in gc.get_objects())
    finally:
        gc.enable()
