"""Fixtures writing the tables of quality_tables.py through Lake.write_arrow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quality_tables import CURRENCIES, RUN_AT, SEGMENTS, gold_tables, silver_tables, write_table

from rfmlake.lake import Lake
from rfmlake.quality import QualityContext

WriteZone = Callable[..., Lake]


@pytest.fixture()
def write_silver(lake: Lake) -> WriteZone:
    """write_silver(orders={"quantity": [...]}, skip=("events",)) -> the lake with silver written."""

    def write(skip: tuple[str, ...] = (), **changes: dict[str, Any]) -> Lake:
        for name, columns in silver_tables().items():
            if name not in skip:
                write_table(lake, "silver", name, {**columns, **changes.get(name, {})})
        return lake

    return write


@pytest.fixture()
def write_gold(lake: Lake) -> WriteZone:
    def write(skip: tuple[str, ...] = (), **changes: dict[str, Any]) -> Lake:
        for name, columns in gold_tables().items():
            if name not in skip:
                write_table(lake, "gold", name, {**columns, **changes.get(name, {})})
        return lake

    return write


@pytest.fixture()
def quality_context() -> QualityContext:
    return QualityContext(run_at=RUN_AT, known_currencies=CURRENCIES, score_bins=5, segment_names=SEGMENTS)
