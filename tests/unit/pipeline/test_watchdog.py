"""StallWatchdog: interrupts the main thread once the process tree has used (almost) no CPU for the
configured time, never while work goes on; tree_cpu_seconds counts the children too."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from rfmlake.pipeline.watchdog import StallWatchdog, _times, tree_cpu_seconds


def clock(step: float) -> Iterator[float]:
    used = 0.0
    while True:
        yield used
        used += step


def test_it_interrupts_once_the_processes_use_no_cpu() -> None:
    cpu, hits = clock(0.0), []
    with StallWatchdog(0.3, interval_s=0.02, read_cpu=lambda: next(cpu), interrupt=lambda: hits.append(1)) as dog:
        deadline = time.monotonic() + 5
        while not hits and time.monotonic() < deadline:
            time.sleep(0.01)
    assert hits == [1]
    assert dog.fired is not None and dog.fired.startswith("no progress for 0.0 minutes")
    assert "used 0.0 CPU seconds" in dog.fired


def test_it_leaves_a_stage_that_uses_cpu_alone() -> None:
    cpu, hits = clock(0.02), []  # 0.02 CPU seconds per 0.02 s sample: one busy CPU
    with StallWatchdog(0.2, interval_s=0.02, read_cpu=lambda: next(cpu), interrupt=lambda: hits.append(1)) as dog:
        time.sleep(0.6)
    assert hits == [] and dog.fired is None


def test_it_is_off_at_zero_off_the_main_thread_and_without_proc() -> None:
    hits: list[int] = []
    with StallWatchdog(0, interval_s=0.01, read_cpu=lambda: 0.0, interrupt=lambda: hits.append(1)):
        time.sleep(0.1)
    with StallWatchdog(0.05, interval_s=0.01, read_cpu=lambda: None, interrupt=lambda: hits.append(1)):
        time.sleep(0.1)

    def elsewhere() -> None:
        with StallWatchdog(0.05, interval_s=0.01, read_cpu=lambda: 0.0, interrupt=lambda: hits.append(1)):
            time.sleep(0.1)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert hits == []


def test_proc_stat_lines_parse_with_odd_process_names() -> None:
    line = "4242 (a (b) c) S 17 1 1 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 1 1 1"
    assert _times(line) == (17, 310.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_tree_cpu_counts_a_busy_child_process() -> None:
    before = tree_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 5: pass"])
    try:
        time.sleep(1.5)
        during = tree_cpu_seconds()
    finally:
        child.kill()
        child.wait()
    assert before is not None and during is not None
    assert during - before > 0.5  # the child's CPU, read while it runs
