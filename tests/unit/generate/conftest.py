"""Generated landing folders shared by the generator tests (generated once per session: it takes ~1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfmlake.generate import generate_landing


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "landing"
    generate_landing(out, order_lines=30_000, seed=11)
    return out


@pytest.fixture(scope="session")
def bad_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "landing"
    generate_landing(out, order_lines=5_000, seed=3, bad_rows=True)
    return out


