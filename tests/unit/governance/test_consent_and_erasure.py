"""Consent filter and erasure on small lakes built directly with Lake.write_arrow (no Spark)."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pytest

from rfmlake.cli.main import main
from rfmlake.governance.consent import consented_customers, only_consented
from rfmlake.governance.erasure import audit_path, erase_customer, suppression_path
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect


def _lake(lake: Lake) -> Lake:
    lake.write_arrow("bronze", "customers", pa.table({
        "customer_id": ["c1", "c2", "c3", "c4"], "email": ["ann@x.com", "bob@x.com", "zann@x.com", None],
        "_corrupt_record": [None, None, None, None]}))
    lake.write_arrow("bronze", "quarantine", pa.table({
        "entity": ["customers", "orders", "customers"], "reason": ["bad_type", "bad_type", "bad_type"],
        "raw": ['{"customer_id":"c1","email":"Ann@X.com"}', '{"order_id":"o1"}', '{"customer_id":"c10"}'],
        "detail": ["x", "y", "z"]}))
    lake.write_arrow("silver", "orders", pa.table({"order_id": ["o1", "o2", "o3"], "customer_id": ["c1", "c2", "c1"]}))
    lake.write_arrow("silver", "order_items", pa.table({"order_id": ["o1", "o1", "o2", "o3"], "line_number": [1, 2, 1, 1]}))
    lake.write_arrow("gold", "dim_customers", pa.table({
        "customer_id": ["c1", "c2", "c3", "c4"], "email_token": ["t1", "t2", "t3", None],
        "marketing_opt_in": [True, False, True, None]}))
    lake.write_arrow("gold", "segment_membership_history", pa.table({
        "customer_id": ["c1", "c1", "c2"], "rfm_segment": ["a", "b", "a"]}))
    return lake


def test_only_opted_in_customers_are_consented(lake: Lake) -> None:
    _lake(lake)
    assert consented_customers(lake) == {"c1", "c3"}  # c2 said no, c4 unknown (null) is not consent
    # an export built on it: the audience of a segment, filtered by consent
    audience = ["c4", "c3", "c2", "c1"]
    assert only_consented(lake, audience) == ["c3", "c1"]


def test_consent_needs_dim_customers(lake: Lake) -> None:
    lake.write_arrow("gold", "customer_rfm", pa.table({"customer_id": ["c1"]}))
    with pytest.raises(Exception, match="gold.dim_customers does not exist"):
        consented_customers(lake)


def test_erasure_removes_the_customer_everywhere_and_only_them(lake: Lake) -> None:
    _lake(lake)
    con = connect(lake)
    before = {r.qualified_name: con.execute(f"SELECT count(*) FROM {r.qualified_name}").fetchone()[0]
              for r in lake.tables()}
    report = erase_customer(lake, "c1", email="ann@x.com", actor="dpo")
    assert report.rows_removed == {
        "bronze.customers": 1, "bronze.quarantine": 2,  # its raw row and its order's raw row
        "silver.orders": 2, "silver.order_items": 3, "gold.dim_customers": 1, "gold.segment_membership_history": 2,
    }
    con = connect(lake)
    for ref in lake.tables():
        count = con.execute(f"SELECT count(*) FROM {ref.qualified_name}").fetchone()[0]
        assert count == before[ref.qualified_name] - report.rows_removed.get(ref.qualified_name, 0)
        text = con.execute(f"SELECT string_agg(CAST(t AS VARCHAR), '|') FROM {ref.qualified_name} t").fetchone()[0] or ""
        assert '"c1"' not in text and "'c1'" not in text and "ann@x.com" not in text.lower().replace("zann@", "")
    # zann@x.com (another customer whose address contains ann@x.com) is untouched
    assert con.execute("SELECT count(*) FROM bronze.customers WHERE email = 'zann@x.com'").fetchone()[0] == 1
    # no older version on disk still holds them
    for ref in lake.tables():
        assert len(list(ref.path.parent.iterdir())) == 1 or ref.qualified_name not in report.rows_removed
    # audit: who, when, what, counts, and no PII
    audit = audit_path(lake).read_text()
    entry = json.loads(audit.splitlines()[-1])
    assert entry["actor"] == "dpo" and entry["rows_removed"]["silver.order_items"] == 3
    assert "c1" not in json.dumps(entry["customer_id_token"]) and "ann" not in audit.lower()
    assert entry["customer_id_token"] in json.loads(suppression_path(lake).read_text())["customer_id_tokens"]
    # suppressed customers never come back through consent either
    assert consented_customers(lake) == {"c3"}


def test_erase_is_idempotent_and_the_cli_reports(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    _lake(lake)
    assert main(["erase", "--lake", str(lake.root), "--customer-id", "c2"]) == 0
    assert "rows from" in capsys.readouterr().out
    again = erase_customer(lake, "c2")
    assert again.rows_removed == {}
    assert len(json.loads(suppression_path(lake).read_text())["customer_id_tokens"]) == 1
    assert duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{lake.require('gold', 'dim_customers').glob}') WHERE customer_id='c2'"
    ).fetchone()[0] == 0


def test_empty_customer_id_is_an_error(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    _lake(lake)
    assert main(["erase", "--lake", str(lake.root), "--customer-id", " "]) == 1
    assert "--customer-id is empty" in capsys.readouterr().err


def test_an_unknown_id_is_refused_unless_allowed(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    _lake(lake)
    assert main(["erase", "--lake", str(lake.root), "--customer-id", "c99"]) == 1
    err = capsys.readouterr().err
    assert "customer id 'c99' is in no table of the lake" in err and "--allow-missing" in err
    assert not suppression_path(lake).exists()  # nothing changed
    assert main(["erase", "--lake", str(lake.root), "--customer-id", "c99", "--allow-missing"]) == 0
    assert "no rows held this customer" in capsys.readouterr().out
    assert len(json.loads(suppression_path(lake).read_text())["customer_id_tokens"]) == 1


def test_erasure_waits_for_no_pipeline_run(lake: Lake) -> None:
    from rfmlake.errors import RfmlakeError
    from rfmlake.lake.locks import lake_lock

    _lake(lake)
    with lake_lock(lake, RuntimeError("busy")), pytest.raises(RfmlakeError, match="a pipeline run is using"):
        erase_customer(lake, "c1")
    assert connect(lake).execute("SELECT count(*) FROM silver.orders WHERE customer_id = 'c1'").fetchone()[0] == 2
