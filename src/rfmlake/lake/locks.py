"""A non-blocking exclusive file lock: a second holder fails fast with the caller's error."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path, busy: Exception) -> Iterator[None]:
    """Hold an flock on `path` (created if absent) for the block; raise `busy` if someone holds it.
    The lock dies with the process, so a crashed holder never leaves it stuck."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lake_lock(lake_system_dir: Path, busy: Exception) -> AbstractContextManager[None]:
    """The one lock per lake that pipeline runs and erasures take: neither may see the other half done."""
    return exclusive_lock(lake_system_dir / "run.lock", busy)
