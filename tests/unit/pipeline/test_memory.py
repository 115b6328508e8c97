"""release_memory gives a finished stage's freed memory back to the operating system."""

from __future__ import annotations

import ctypes.util
import gc
import os
import sys

import pytest

from rfmlake.pipeline.memory import between_stages, release_memory


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="glibc heap trimming is Linux only")
def test_freed_heap_between_live_blocks_goes_back_to_the_system() -> None:
    # ~400 MB of 2 KB blocks (malloc's heap, not mmap), one in a hundred kept alive: glibc cannot
    # shrink a heap with live blocks at its end, so the freed pages stay resident until trimmed.
    blocks = [bytes(2048) for _ in range(200_000)]
    kept = blocks[::100]
    del blocks
    held = _rss()
    release_memory()
    assert held - _rss() > 200 * 2**20
    assert len(kept) == 2_000


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_between_stages_a_collection_walks_only_what_the_stage_made_and_the_run_ends_unfrozen() -> None:
    assert gc.get_freeze_count() == 0
    with between_stages() as after_stage:
        after_stage()
        survivors = gc.get_freeze_count()
        assert survivors > 0  # what the process held is frozen: the next collection skips it
        made = [_Cycle() for _ in range(1000)]
        del made  # the stage's cyclic garbage: still collected after the next stage
        after_stage()
        assert gc.get_freeze_count() - survivors < 1000
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_them_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with between_stages() as after_stage:
            after_stage()
            # collected in full, nothing more frozen (frozen objects freed meanwhile leave the count)
            assert gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
