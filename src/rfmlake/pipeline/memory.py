"""Between stages of one run: give back to the operating system what a finished stage freed.

A local run is one process. CPython's allocator, glibc's malloc arenas and Arrow's memory pool keep
freed memory for reuse, so without this the process's resident size after a stage is the largest any
earlier stage needed, and every later stage adds its own on top (the 10M bench: 3.4 GB held after
ingestion through to the last stage)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def release_memory() -> None:
    """Collect garbage, release Arrow's unused pool memory and trim glibc's heap (Linux)."""
    gc.collect()
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    else:
        pyarrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        _malloc_trim()


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - a Linux without a findable libc (e.g. a static build)
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # musl has no malloc_trim; nothing to trim there
        return
    trim(0)
