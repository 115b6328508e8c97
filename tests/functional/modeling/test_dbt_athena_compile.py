"""The athena target parses and compiles offline (no AWS account, no network)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rfmlake.modeling import compile_athena, find_project_dir
from rfmlake.settings import Settings

pytestmark = pytest.mark.dbt


def _untracked(project_dir: Path) -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored", "--", str(project_dir)],
        capture_output=True, text=True, cwd=project_dir, check=False,
    ).stdout
    return {line[3:] for line in out.splitlines() if line.startswith(("??", "!!"))}


def test_athena_compiles_offline_with_prefixed_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    project_dir = find_project_dir()
    before = _untracked(project_dir)

    target = compile_athena(tmp_path / "athena", Settings(prefix="shop"))

    compiled = target / "compiled" / "rfmlake" / "models"
    features_sql = (compiled / "marts" / "customer_rfm_features.sql").read_text()
    orders_sql = (compiled / "staging" / "stg_silver__orders.sql").read_text()
    assert '"shop_intermediate"."int_orders__in_window"' in features_sql
    assert '"shop_silver"."orders"' in orders_sql
    # Trino date arithmetic from the athena dispatch of dbt.datediff, not DuckDB's date_diff.
    assert "to_milliseconds" in features_sql

    manifest = json.loads((target / "manifest.json").read_text())
    features = manifest["nodes"]["model.rfmlake.customer_rfm_features"]
    assert features["schema"] == "shop_gold"
    assert features["config"]["contract"]["enforced"] is True
    sources = {s["name"]: s["schema"] for s in manifest["sources"].values() if s["source_name"] == "silver"}
    assert set(sources.values()) == {"shop_silver"}
    # the gold tables Python writes (documented as source `gold`; identity_graph is read) follow the same prefix
    assert {s["schema"] for s in manifest["sources"].values() if s["source_name"] == "gold"} == {"shop_gold"}
    assert set(sources) == {"customers", "orders", "order_items", "products", "events", "access_logs",
                            "currency_rates"}
    # dbt's target/ and logs/ went under tmp_path, not into the repository.
    assert _untracked(project_dir) == before
