"""Issue 15: activation sent to an address taken from a CRM record that ingest had quarantined
(addresses came from every bronze.customers row, newest by updated_at). Here the rejection is real:
two `rfmlake run`s, the second over a CRM update that ingest quarantines, and activation keeps
sending to the address of the record silver accepted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _export_files(lake: Lake) -> set[Path]:
    """The published file exports: <as_of>/<sync id>/<segment>.jsonl."""
    return set((lake.root / "gold" / "_activation" / "file").glob("*/*/*.jsonl"))


def _rows(files: set[Path]) -> list[dict[str, str]]:
    return [row for path in sorted(files) for row in map(json.loads, path.read_text().splitlines())]


def test_a_quarantined_crm_update_never_changes_where_activation_sends(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    header = ["customer_id", "email", "marketing_opt_in", "updated_at"]
    _write_csv(landing / "customers" / "crm-2026-09-01.csv", [header] + [
        [f"C{i}", f"buyer{i}@example.com", "true", "2026-09-01T08:00:00Z"] for i in range(3)])
    orders = ["order_id", "customer_id", "order_ts", "currency", "order_total"]
    _write_csv(landing / "orders" / "orders-1.csv", [orders] + [
        [f"O{i}", f"C{i}", f"2026-09-0{i + 2}T10:00:00Z", "EUR", f"{20 + 15 * i}.00"] for i in range(3)])
    assert main(["run", "--input", str(landing), "--lake", str(lake.root)]) == 0
    first = _export_files(lake)
    assert {r["customer_id"]: r["email"] for r in _rows(first)} == {f"C{i}": f"buyer{i}@example.com" for i in range(3)}

    # The CRM sends an update for C1 with a new address, stamped years ahead by a wrong clock: ingest
    # quarantines it (implausible_date). Under the old rule it was the newest record, so its address won.
    _write_csv(landing / "customers" / "crm-2026-09-10.csv", [header, [
        "C1", "changed1@example.net", "true", "2031-09-10T08:00:00Z"]])
    # C1 orders again, so the second sync sends C1 (its frequency and monetary changed).
    _write_csv(landing / "orders" / "orders-2.csv", [orders, ["O9", "C1", "2026-09-10T10:00:00Z", "EUR", "90.00"]])
    assert main(["run", "--input", str(landing), "--lake", str(lake.root)]) == 0

    con = connect(lake)
    try:
        quarantined = con.execute("SELECT source_file, reason FROM bronze.quarantine WHERE entity = 'customers'"
                                  ).fetchall()
        frequency = con.execute("SELECT frequency FROM gold.customer_rfm WHERE customer_id = 'C1'").fetchone()[0]
    finally:
        con.close()
    assert quarantined == [("customers/crm-2026-09-10.csv", "implausible_date")]
    assert frequency == 2
    second = [r for r in _rows(_export_files(lake) - first) if r["customer_id"] == "C1"]
    assert second and {r["email"] for r in second} == {"buyer1@example.com"}
    assert all(r["email"] != "changed1@example.net" for r in _rows(_export_files(lake)))
