"""Erasure and consent end to end on a generated lake: one pipeline run, `rfmlake erase`, then a
re-run on the same landing files (the suppression list keeps the customer out)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from erasure_scan import Needle, files_mentioning, mentions, pick_person  # type: ignore[import-not-found]
from rfmlake.cli.main import main
from rfmlake.governance.consent import consented_customers
from rfmlake.governance.erasure import audit_path, suppression_path
from rfmlake.governance.local import uncovered_columns
from rfmlake.governance.model import load_governance
from rfmlake.governance.tokens import customer_id_token, lake_key
from rfmlake.ingest.pii import tokenize
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.runner import RunSummary, run_pipeline
from rfmlake.profiles.indexer import embedded_store
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow



def mentions_found(lake: Lake, needles: list[Needle]) -> list[Needle]:
    """The needles some file under the lake holds."""
    found: list[Needle] = []
    for path in sorted(p for p in lake.root.rglob("*") if p.is_file()):
        found.extend(n for n in mentions(path.read_bytes(), needles) if n not in found)
    return found


def _counts(lake: Lake) -> dict[str, int]:
    con = connect(lake)
    return {r.qualified_name: con.execute(f"SELECT count(*) FROM {r.qualified_name}").fetchone()[0]
            for r in lake.tables()}


def _quarantine(lake: Lake) -> dict[str, int]:
    con = connect(lake)
    return dict(con.execute("SELECT reason, count(*) FROM bronze.quarantine GROUP BY reason").fetchall())


def _mentions(lake: Lake, customer_id: str, email: str, tokens: list[str]) -> dict[str, int]:
    """Rows of any table with a VARCHAR cell equal to the id or one of its tokens, naming the id as
    a word, or containing the email address."""
    con = connect(lake)
    found: dict[str, int] = {}
    word = rf"(^|[^A-Za-z0-9]){re.escape(customer_id)}([^A-Za-z0-9]|$)"
    for ref in lake.tables():
        columns = [name for name, kind in con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE {ref.qualified_name})").fetchall() if kind == "VARCHAR"]
        if not columns:
            continue
        tests = " OR ".join(
            f'("{c}" IN (?, {", ".join("?" for _ in tokens)}) OR regexp_matches("{c}", ?) '
            f'OR contains(lower("{c}"), ?))' for c in columns)
        params: list[Any] = []
        for _ in columns:
            params += [customer_id, *tokens, word, email.lower()]
        n = con.execute(f"SELECT count(*) FROM {ref.qualified_name} WHERE {tests}", params).fetchone()[0]
        if n:
            found[ref.qualified_name] = n
    return found


def _files_mentioning(lake: Lake, needles: list[Needle]) -> list[str]:
    """Every file under the lake, however it holds data (tests/erasure_scan.py)."""
    return files_mentioning(lake.root, needles)


def _exported_ids(lake: Lake) -> set[str]:
    ids = set()
    for path in (lake.root / "gold" / "_activation").rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["action"] != "exited":
                ids.add(row["customer_id"])
    return ids


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rfmlake.generate import generate_landing

    root = tmp_path_factory.mktemp("erasure_e2e")
    generate_landing(root / "landing", order_lines=2000, seed=23, bad_rows=True)
    manifest = json.loads((root / "landing" / "_generator_manifest.json").read_text())
    lake = Lake(root / "lake")
    summary = run_pipeline(RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings()))
    assert all(s.status == "succeeded" for s in summary.stages), [(s.name, s.status) for s in summary.stages]
    return {"root": root, "lake": lake, "manifest": manifest, "summary": summary}


@pytest.fixture(scope="module")
def erased(generated: dict[str, Any]) -> dict[str, Any]:
    """Pick a consented customer with orders, events and an email (and an access-log line if any),
    snapshot the lake, erase them with the CLI."""
    lake: Lake = generated["lake"]
    con = connect(lake)
    person = pick_person(con, generated["root"] / "landing")
    customer_id, email = str(person["customer_id"]), str(person["email"])
    key = lake_key(lake)
    tokens = [customer_id_token(customer_id, key), tokenize(email, key, "email")]
    expected_orders = con.execute("SELECT count(*) FROM silver.orders WHERE customer_id = ?", [customer_id]).fetchone()[0]
    expected_items = con.execute(
        "SELECT count(*) FROM silver.order_items WHERE order_id IN (SELECT order_id FROM silver.orders WHERE customer_id = ?)",
        [customer_id]).fetchone()[0]
    before = _counts(lake)
    assert _mentions(lake, customer_id, email, tokens)  # the checks can see them before erasure
    needles = list(person["needles"])  # type: ignore[call-overload]
    assert set(mentions_found(lake, needles)) == set(needles)  # id, email, phone and name, each
    assert embedded_store(lake).get(customer_id) is not None
    assert main(["erase", "--lake", str(lake.root), "--customer-id", customer_id, "--email", email]) == 0
    return {"customer_id": customer_id, "email": email, "tokens": tokens, "needles": needles, "before": before,
            "after": _counts(lake), "quarantine_after": _quarantine(lake), "expected_orders": expected_orders, "expected_items": expected_items,
            "audit": [json.loads(line) for line in audit_path(lake).read_text().splitlines()]}


@pytest.fixture(scope="module")
def rerun(generated: dict[str, Any], erased: dict[str, Any]) -> RunSummary:
    lake: Lake = generated["lake"]
    generated["quarantine_first"] = _quarantine(lake)
    return run_pipeline(RunContext(landing_dir=generated["root"] / "landing", lake=lake, settings=load_settings()))


# --------------------------------------------------------------------------- first run: consent, coverage
def test_every_column_of_the_real_lake_is_tagged(generated: dict[str, Any]) -> None:
    assert uncovered_columns(load_governance(), generated["lake"]) == []


def test_consent_and_activation_exclude_customers_without_opt_in(generated: dict[str, Any]) -> None:
    lake: Lake = generated["lake"]
    con = connect(lake)
    opted = {r[0] for r in con.execute("SELECT customer_id FROM gold.dim_customers WHERE marketing_opt_in").fetchall()}
    not_opted = {r[0] for r in con.execute(
        "SELECT customer_id FROM gold.dim_customers WHERE marketing_opt_in IS NOT TRUE").fetchall()}
    assert opted and not_opted
    assert consented_customers(lake) == opted
    exported = _exported_ids(lake)  # the pipeline's activate stage (file destination)
    assert exported, "the activation export is empty"
    assert exported <= opted and not exported & not_opted


# --------------------------------------------------------------------------- erasure
def test_no_query_in_any_zone_finds_the_erased_customer(generated: dict[str, Any], erased: dict[str, Any]) -> None:
    lake: Lake = generated["lake"]
    assert _mentions(lake, erased["customer_id"], erased["email"], erased["tokens"]) == {}
    # nor any text file under the lake (activation exports and state, profile store, run reports)
    assert _files_mentioning(lake, erased["needles"]) == []
    assert embedded_store(lake).get(erased["customer_id"]) is None
    assert erased["customer_id"] not in consented_customers(lake)


def test_everyone_else_is_unchanged(generated: dict[str, Any], erased: dict[str, Any]) -> None:
    entry = erased["audit"][-1]
    removed, added = entry["rows_removed"], entry["rows_added"]
    assert removed["silver.orders"] == erased["expected_orders"] > 0
    assert removed["silver.order_items"] == erased["expected_items"] > 0
    for table in ("bronze.customers", "silver.customers", "silver.events", "gold.dim_customers", "gold.customer_rfm"):
        assert removed.get(table, 0) >= 1, table
    # their landed rows leave bronze and come back only as lineage: suppressed, and quarantined as erased
    assert added["bronze.suppressed_rows"] >= removed["bronze.customers"] + removed["bronze.orders"]
    for table, count in erased["before"].items():
        assert erased["after"][table] == count - removed.get(table, 0) + added.get(table, 0), table
    assert entry["downstream_removed"].get("profile_store") == 1


def test_the_audit_entry_has_no_personal_data(generated: dict[str, Any], erased: dict[str, Any]) -> None:
    lake: Lake = generated["lake"]
    text = audit_path(lake).read_text() + suppression_path(lake).read_text()
    assert erased["customer_id"] not in text and erased["email"].lower() not in text.lower()
    entry = erased["audit"][-1]
    assert entry["customer_id_token"] == erased["tokens"][0] and entry["email_given"] is True
    assert entry["actor"] and entry["erased_at"]


# --------------------------------------------------------------------------- re-run from landing
def test_a_rerun_does_not_bring_the_customer_back(generated: dict[str, Any], erased: dict[str, Any],
                                                  rerun: RunSummary) -> None:
    lake: Lake = generated["lake"]
    assert all(s.status == "succeeded" for s in rerun.stages), [(s.name, s.status) for s in rerun.stages]
    assert _mentions(lake, erased["customer_id"], erased["email"], erased["tokens"]) == {}
    assert _files_mentioning(lake, erased["needles"]) == []
    assert embedded_store(lake).get(erased["customer_id"]) is None
    assert erased["customer_id"] not in _exported_ids(lake)


def test_rerun_reconciles_and_quarantines_erased_rows_without_raw_values(
        generated: dict[str, Any], erased: dict[str, Any], rerun: RunSummary) -> None:
    lake: Lake = generated["lake"]
    assert rerun.reconciliation_ok
    con = connect(lake)
    files = dict(con.execute("SELECT source_file, rows_in FROM silver.ingest_reconciliation").fetchall())
    assert files == generated["manifest"]["files"]  # every landed row is counted, the erased ones too
    assert con.execute("SELECT count(*) FROM silver.ingest_reconciliation "
                       "WHERE rows_in <> rows_accepted + rows_quarantined").fetchone()[0] == 0
    erased_rows = con.execute(
        "SELECT entity, count(*), count(raw), count(detail), count(_row_hash) FROM bronze.quarantine "
        "WHERE reason = 'erased_customer' GROUP BY entity ORDER BY entity").fetchall()
    by_entity = {e: n for e, n, _, _, _ in erased_rows}
    assert {"customers", "orders", "order_items", "events"} <= set(by_entity)
    assert all(raw == 0 and detail == 0 and hashes == n for _, n, raw, detail, hashes in erased_rows)
    suppressed = con.execute("SELECT count(*) FROM bronze.suppressed_rows").fetchone()[0]
    assert suppressed == sum(by_entity.values())
    # erasure already left the quarantine as re-ingestion makes it: the erased customer's rows
    # (their own bad rows too) as lineage only; the run after it changes nothing
    assert _quarantine(lake) == erased["quarantine_after"]
    assert erased["quarantine_after"]["erased_customer"] == suppressed


def test_rerun_keeps_everyone_elses_silver_rows(generated: dict[str, Any], erased: dict[str, Any],
                                                rerun: RunSummary) -> None:  # noqa: ARG001
    counts = _counts(generated["lake"])
    for table in ("silver.customers", "silver.orders", "silver.order_items", "silver.events", "silver.products",
                  "silver.access_logs", "bronze.customers", "bronze.orders", "bronze.order_items", "bronze.events",
                  "gold.dim_customers", "gold.customer_rfm"):
        assert counts[table] == erased["after"][table], table
