"""Ingestion with an erasure suppression list: rows of erased customers never reach bronze, and
silver counts them as quarantined (erased_customer) without raw values."""

from __future__ import annotations

import json
from pathlib import Path

from ingest_landing_fixture import build_landing  # type: ignore[import-not-found]

from rfmlake.lake import Lake

EXPECTED = {  # (entity, source_file) -> suppressed rows
    ("customers", "customers/crm.csv"): 2,        # c1, and the row with nobody@x.com
    ("customers", "customers/crm2.jsonl"): 1,     # c1
    ("orders", "orders/orders.csv"): 11,          # every row of c1, the one without order_id too
    ("orders", "orders/orders2.parquet"): 1,      # o8 of c1
    ("order_items", "order_items/items.jsonl"): 8,  # the lines of o1 and o3
    ("events", "events/2024/events.jsonl"): 1,    # e1 of c1
    ("events", "events/2024/broken.jsonl"): 1,    # an unreadable line naming c1
    ("access_logs", "access_logs/web-1-2024-01-05.log"): 1,  # frank's line
    ("aws_rfm_guidance", "aws_rfm_guidance/guidance.csv"): 1,  # c1's purchase
}


def test_suppressed_customers_stay_out_of_bronze_and_silver(tmp_path: Path) -> None:
    from rfmlake.governance.erasure import suppression_path
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.ingest.pii import resolve_pii_key, tokenize
    from rfmlake.lake.catalog import connect
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    landing = build_landing(tmp_path)
    (landing / "events" / "2024" / "broken.jsonl").write_text(
        '{"event_type": "page_view", "customer_id": "c1", oops\n'
        '{"event_type": "page_view", "customer_id": "c10", oops\n'  # not c1: kept (quarantined as malformed)
    )
    lake = Lake(tmp_path / "lake")
    key = resolve_pii_key(lake, Settings())
    path = suppression_path(lake)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "customer_id_tokens": [tokenize("c1", key, "user"), tokenize("frank", key, "user")],
        "email_tokens": [tokenize("Nobody@X.com", key, "email")],
    }))

    report = run_ingest(DuckEngine(), RunContext(landing_dir=landing, lake=lake, settings=Settings()))

    con = connect(lake)
    got = {(e, f): n for e, f, n in con.execute(
        "SELECT entity, _source_file, count(*) FROM bronze.suppressed_rows GROUP BY ALL").fetchall()}
    assert got == EXPECTED
    # nothing of theirs in bronze, quarantine raw or silver
    for table in ("bronze.customers", "bronze.orders", "bronze.events", "silver.customers", "silver.orders",
                  "silver.events"):
        assert con.execute(f"SELECT count(*) FROM {table} WHERE trim(customer_id) = 'c1'").fetchone()[0] == 0, table
    assert con.execute("SELECT count(*) FROM bronze.aws_rfm_guidance WHERE customerid = 'c1'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM bronze.order_items WHERE order_id IN ('o1', 'o3')").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM bronze.access_logs WHERE line LIKE '% frank %'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM bronze.customers WHERE email LIKE '%nobody%'").fetchone()[0] == 0
    assert con.execute(
        "SELECT count(*) FROM bronze.quarantine WHERE raw LIKE '%\"c1\"%' OR raw LIKE '%frank%' "
        "OR raw LIKE '%nobody%' OR detail LIKE '%nobody%'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM silver.events WHERE customer_id = 'c10'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM bronze.quarantine WHERE raw LIKE '%c10%'").fetchone()[0] == 1
    # counted as quarantined, lineage only
    rows = con.execute("SELECT entity, source_file, raw, detail, _row_hash FROM bronze.quarantine "
                       "WHERE reason = 'erased_customer'").fetchall()
    assert len(rows) == sum(EXPECTED.values())
    assert all(raw is None and detail is None and len(row_hash) == 64 for _, _, raw, detail, row_hash in rows)
    assert {(e, r): n for (e, r), n in report.quarantine_counts.items() if r == "erased_customer"} == {
        (e, "erased_customer"): sum(n for (entity, _), n in EXPECTED.items() if entity == e)
        for e in {e for e, _ in EXPECTED}
    }
    # rows in = accepted + quarantined per file, rows in counting every landed row
    by_file = {r.source_file: r for r in report.reconciliation}
    assert all(r.balanced for r in report.reconciliation)
    assert by_file["orders/orders.csv"].rows_in == 13 and by_file["order_items/items.jsonl"].rows_in == 12
    assert by_file["customers/crm.csv"].rows_in == 6 and by_file["events/2024/broken.jsonl"].rows_in == 2
