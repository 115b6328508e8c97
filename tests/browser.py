"""Headless Chromium for tests of pages people look at (reports, dashboards).

CI installs Debian's chromium (.ci/run). Outside CI a missing browser skips the test with a reason;
in CI (CI=true) it fails, so a green CI always means the page really rendered.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="rfmlake-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )


def dump_dom(url_or_path: str | Path, *, virtual_time_budget_ms: int = 5000, timeout: float = 90) -> str:
    """The DOM after scripts ran (file paths become file:// URLs)."""
    target = Path(url_or_path).resolve().as_uri() if isinstance(url_or_path, Path) else url_or_path
    result = _run([f"--virtual-time-budget={virtual_time_budget_ms}", "--dump-dom", target], timeout)
    if result.returncode != 0 or not result.stdout.strip():
        raise AssertionError(f"chromium could not render {target}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return result.stdout


def console_messages(url_or_path: str | Path, *, timeout: float = 90) -> list[str]:
    """Every console message (and uncaught error) while loading the page. Chromium's log does not
    keep the level, so a page meant to be clean should produce none at all."""
    target = Path(url_or_path).resolve().as_uri() if isinstance(url_or_path, Path) else url_or_path
    result = _run(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", target], timeout)
    return [line.split("] ", 1)[-1] for line in result.stderr.splitlines() if ":CONSOLE" in line]


def screenshot(url_or_path: str | Path, out: Path, *, size: str = "1280,2000", timeout: float = 90) -> Path:
    target = Path(url_or_path).resolve().as_uri() if isinstance(url_or_path, Path) else url_or_path
    result = _run([f"--window-size={size}", "--virtual-time-budget=5000", f"--screenshot={out}", target], timeout)
    if result.returncode != 0 or not out.exists():
        raise AssertionError(f"chromium could not screenshot {target}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return out
