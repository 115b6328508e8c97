"""A stage that stops making progress fails the run instead of hanging it.

A local run is one process and its children (Spark's JVM). A deadlocked engine query waits forever
while using no CPU (docs/adr/0024: DuckDB 1.5, 25 minutes at 0 CPU in the 10M bench), and the run
keeps holding the lake's lock, so every later run is refused too. While a stage runs, StallWatchdog
samples the CPU time of the whole process tree. If the tree has used less than `min_share` of one CPU
for `after_s` seconds, it interrupts the main thread the way Ctrl-C would. DuckDB checks for that
between tasks even while it is deadlocked. The runner then reports the stage as stalled and rolls the
run back (`stage_stall_minutes`). Work that really runs uses CPU: even a stage waiting on S3 or a
JVM uses some every minute. On Linux (it reads /proc); elsewhere the watchdog is off.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_PROC = Path("/proc")


def _times(stat: str) -> tuple[int, float]:
    """(parent pid, CPU ticks of the process and its reaped children) from a /proc/<pid>/stat line."""
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces or ")"
    return int(fields[1]), sum(float(f) for f in fields[11:15])  # ppid; utime stime cutime cstime


def tree_cpu_seconds(pid: int | None = None) -> float | None:
    """CPU seconds used by process `pid` (default: this one), its reaped children and every live
    process below it. None where /proc cannot be read."""
    root = os.getpid() if pid is None else pid
    if not (_PROC / str(root) / "stat").is_file():
        return None
    ticks: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent, used = _times((entry / "stat").read_text())
        except (OSError, ValueError):  # exited while we looked
            continue
        ticks[int(entry.name)] = used
        children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total / os.sysconf("SC_CLK_TCK")


def interrupt_main_thread() -> None:
    """Deliver SIGINT to the main thread: Python raises KeyboardInterrupt there, and a waiting DuckDB
    query stops with "Query interrupted"."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


class StallWatchdog:
    """While in its `with` block, interrupts the main thread once the process tree has used under
    `min_share` of one CPU for `after_s` seconds (sampled every `interval_s`, by default a fifth of
    that up to 10 s); `fired` then says so. Off when `after_s` is 0,
    when not entered from the main thread, or where the CPU time cannot be read."""

    def __init__(self, after_s: float, *, interval_s: float | None = None, min_share: float = 0.02,
                 read_cpu: Callable[[], float | None] = tree_cpu_seconds,
                 interrupt: Callable[[], None] = interrupt_main_thread) -> None:
        self.after_s = after_s
        self.interval_s = min(10.0, after_s / 5) if interval_s is None else interval_s
        self.min_share = min_share
        self.read_cpu = read_cpu
        self.interrupt = interrupt
        self.fired: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StallWatchdog:
        if (self.after_s > 0 and threading.current_thread() is threading.main_thread()
                and self.read_cpu() is not None):
            self._thread = threading.Thread(target=self._watch, name="rfmlake-stall-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        samples: deque[tuple[float, float]] = deque()
        while not self._stop.wait(self.interval_s):
            now, cpu = time.monotonic(), self.read_cpu()
            if cpu is None:
                return
            samples.append((now, cpu))
            while len(samples) > 1 and now - samples[1][0] >= self.after_s:
                samples.popleft()
            start, used = samples[0]
            if now - start >= self.after_s and cpu - used < self.min_share * (now - start):
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.fired = (f"no progress for {(now - start) / 60:.1f} minutes (the run's processes "
                                  f"used {cpu - used:.1f} CPU seconds in that time)")
                    self.interrupt()
                return


__all__ = ["StallWatchdog", "interrupt_main_thread", "tree_cpu_seconds"]
