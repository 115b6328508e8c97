"""release_memory gives a finished stage's freed memory back to the operating system."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest

from rfmlake.pipeline.memory import release_memory


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
