"""Erasure by customer id reaches the same person under another id: the emails and phones of their
CRM records go on the suppression list, so other CRM records with those details leave bronze and
the quarantine, now and in later runs (DuckDB ingest on a small landing). That other id's orders
stay (it could be someone sharing a phone): the report names the id so it can be erased too."""

from __future__ import annotations

import json
from pathlib import Path

from test_erasure_end_to_end import _files_mentioning  # type: ignore[import-not-found]

from rfmlake.cli.main import main
from rfmlake.lake import Lake


def _landing(root: Path) -> Path:
    landing = root / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(
        "customer_id,email,phone,first_name,last_name,updated_at\n"
        "c1,ann.lee@example.com,+46 70 111 22 33,Ann,Lee,2024-01-01\n"
        "c2,bob@example.com,,Bob,Ray,2024-01-01\n"
        # the same person under another id (a CRM duplicate), and a bad record of hers
        "c7,Ann.Lee@Example.com,,Ann,Lee,2024-02-01\n"
        "c8,,+46-70-111-2233,A,L,yesterday\n")
    (landing / "orders").mkdir()
    (landing / "orders" / "o.csv").write_text(
        "order_id,customer_id,order_ts,order_total\no1,c1,2024-01-05,10\no2,c2,2024-01-06,20\no3,c7,2024-02-02,5\n")
    return landing


def _ingest(landing: Path, lake: Lake) -> None:
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    engine = DuckEngine()
    try:
        report = run_ingest(engine, RunContext(landing_dir=landing, lake=lake, settings=Settings()))
    finally:
        engine.close()
    assert all(r.balanced for r in report.reconciliation)


def test_erasing_by_id_reaches_the_persons_other_records(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from rfmlake.lake.catalog import connect

    landing = _landing(tmp_path)
    lake = Lake(tmp_path / "lake")
    _ingest(landing, lake)
    assert _files_mentioning(lake, [("Ann", "Lee"), "+46-70-111-2233"])  # the scan sees them before
    assert main(["erase", "--lake", str(lake.root), "--customer-id", "c1"]) == 0
    assert "other customer ids with their email or phone: c7, c8" in capsys.readouterr().out
    # the raw forms the landing had: id, both emails, both phones, the name on her two records
    needles = ["c1", "ann.lee@example.com", "+46 70 111 22 33", "+46-70-111-2233", ("Ann", "Lee")]
    assert _files_mentioning(lake, needles) == []
    con = connect(lake)
    assert con.execute("SELECT customer_id FROM silver.customers ORDER BY 1").fetchall() == [("c2",)]
    assert con.execute("SELECT order_id, customer_id FROM silver.orders ORDER BY 1").fetchall() == [
        ("o2", "c2"), ("o3", "c7")]
    assert con.execute("SELECT reason, count(*) FROM bronze.quarantine GROUP BY 1").fetchall() == [
        ("erased_customer", 4)]  # the records of c1, c7, c8 and c1's order, as lineage only
    assert con.execute("SELECT count(*) FROM silver.ingest_reconciliation "
                       "WHERE rows_in <> rows_accepted + rows_quarantined").fetchone()[0] == 0
    suppression = json.loads((lake.system_dir / "governance" / "suppression.json").read_text())
    assert len(suppression["email_tokens"]) == 1 and len(suppression["phone_tokens"]) == 1

    (landing / "customers" / "crm-later.csv").write_text(  # she comes back in a later delivery
        "customer_id,email,phone\nc9,ANN.LEE@example.com ,\nc10,,+4670 1112233\nc11,new@example.com,\n")
    _ingest(landing, lake)
    assert _files_mentioning(lake, needles) == []
    con = connect(lake)
    assert con.execute("SELECT customer_id FROM silver.customers ORDER BY 1").fetchall() == [("c11",), ("c2",)]
