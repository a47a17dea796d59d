"""The matching seam's process hygiene: the cyclic garbage collector it pauses comes back, and
what a run built is freed when it returns."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from recon_pipeline.matching.seam import cyclic_collector_paused
from tests import REPO_ROOT


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


def test_a_first_matching_in_a_fresh_process_leaves_no_garbage_holding_its_context():
    # The first run of a process loads the name vocabulary. Loading it imported a package whose
    # import leaves reference cycles through its frames, and those frames kept their callers'
    # (the matching's) locals alive until a full collection: the final collection then walked
    # the whole context again. With automatic collection off, reference counting alone must
    # free every open order of the book once the run has returned.
    script = """
import gc
gc.disable()
from recon_pipeline.matching.allocation import OpenOrder
from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.settings import load_settings
from tests.matching.test_engine import inputs, line
links = build_receipt_links(inputs([line("T1", 100000, "北京某某科技有限公司", "25BJ00001")]), load_settings())
assert links["customer_id"].iloc[0] == "C01", links
print(sum(isinstance(o, OpenOrder) for o in gc.get_objects()))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
