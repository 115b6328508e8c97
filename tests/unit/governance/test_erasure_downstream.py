"""Erasure beyond the tables: profile store, activation exports and sync state, access logs."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rfmlake.errors import RfmlakeError
from rfmlake.governance.downstream import erase_from_activation, erase_from_profile_store
from rfmlake.governance.erasure import erase_customer
from rfmlake.governance.tokens import customer_id_token, lake_key
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.profiles.embedded import EmbeddedProfileStore
from rfmlake.profiles.indexer import embedded_store


def _docs(n: int) -> list[dict]:
    return [{"customer_id": f"c{i:04d}", "email_token": f"t{i}", "rfm_segment": "Champions", "city": "Oslo"}
            for i in range(n)]


def test_profile_store_loses_the_customer_in_a_new_generation_and_old_ones_go(lake: Lake) -> None:
    store = embedded_store(lake)
    store.load_generation(_docs(1203), "g1")  # more than two pages of 500
    store.activate("g1")
    assert erase_from_profile_store(store, "c0007", None) == 1
    assert store.get("c0007") is None and store.get("c0008") is not None
    assert store.generations() == [store.active_generation()] and store.active_generation() != "g1"
    # by email token alone
    assert erase_from_profile_store(store, "nobody", "t9") == 1
    assert store.find_by_email_token("t9") is None
    assert sum(s.customers for s in store.segments()) == 1201
    assert erase_from_profile_store(store, "c0007", None) == 0  # already gone: nothing rebuilt


def test_erasure_drops_a_generation_a_killed_run_loaded_but_never_swapped_in(lake: Lake) -> None:
    """The pipeline swaps a loaded generation in only once its run commits; one killed before that
    leaves a newer generation nobody reads, which still holds the customer."""
    lake.write_arrow("gold", "dim_customers", pa.table({"customer_id": ["c0001"], "email_token": ["t1"]}))
    store = embedded_store(lake)
    store.load_generation(_docs(3)[1:], "g1")  # the active one does not know c0000 yet
    store.activate("g1")
    store.load_generation(_docs(3), "g2")  # loaded by the killed run
    erase_customer(lake, "c0000", allow_missing=True)
    assert store.generations() == ["g1"] and store.get("c0000") is None


def test_profile_store_without_a_generation_is_left_alone(tmp_path) -> None:
    assert erase_from_profile_store(EmbeddedProfileStore(tmp_path / "none"), "c1", None) == 0


def _activation(lake: Lake) -> None:
    export = lake.root / "gold" / "_activation" / "file" / "2024-06-30" / "s1"
    export.mkdir(parents=True)
    rows = [{"action": "entered", "customer_id": "c1", "email": "Ann@X.com", "segment": "Champions"},
            {"action": "entered", "customer_id": "c2", "email": "bob@x.com", "segment": "Champions"},
            {"action": "entered", "customer_id": "c1", "email": "ann@x.com", "segment": "Loyal"}]
    for segment in ("Champions", "Loyal"):
        mine = [r for r in rows if r["segment"] == segment]
        (export / f"{segment.lower()}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mine))
        (export / f"{segment.lower()}.csv").write_text(
            "action,customer_id,email,segment\n" + "".join(",".join(r.values()) + "\n" for r in mine))
    (export / "_manifest.json").write_text(json.dumps(
        {"sync_id": "s1", "segments": {"Champions": {"entered": 2}, "Loyal": {"entered": 1}}}))
    state = lake.system_dir / "activation" / "file"
    state.mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": ["c1", "c2"], "segment": ["Loyal", "Champions"],
                             "fingerprint": ["f1", "f2"]}), state / "snapshot-s1.parquet")
    (state / "dead_letter.jsonl").write_text(json.dumps({"customer_id": "c1", "reason": "bounced"}) + "\n")


def test_activation_exports_and_state_lose_the_customer(lake: Lake) -> None:
    _activation(lake)
    removed = erase_from_activation(lake, "c1", "ann@x.com")
    export = lake.root / "gold" / "_activation" / "file" / "2024-06-30" / "s1"
    assert removed == {
        "gold/_activation/file/2024-06-30/s1/champions.csv": 1, "gold/_activation/file/2024-06-30/s1/champions.jsonl": 1,
        "gold/_activation/file/2024-06-30/s1/loyal.csv": 1, "gold/_activation/file/2024-06-30/s1/loyal.jsonl": 1,
        "_system/activation/file/snapshot-s1.parquet": 1, "_system/activation/file/dead_letter.jsonl": 1,
    }
    assert sorted(p.name for p in export.iterdir()) == ["_manifest.json", "champions.csv", "champions.jsonl"]
    assert json.loads((export / "_manifest.json").read_text())["segments"] == {"Champions": {"entered": 1}}
    assert "c1" not in (export / "champions.csv").read_text() and "bob@x.com" in (export / "champions.csv").read_text()
    snapshot = pq.read_table(lake.system_dir / "activation" / "file" / "snapshot-s1.parquet")
    assert snapshot["customer_id"].to_pylist() == ["c2"]


def test_erasure_refuses_while_an_activation_sync_is_interrupted(lake: Lake) -> None:
    lake.write_arrow("silver", "orders", pa.table({"order_id": ["o1"], "customer_id": ["c1"]}))
    (lake.system_dir / "activation" / "ses" / "inflight").mkdir(parents=True)
    with pytest.raises(RfmlakeError, match=r"interrupted for destination\(s\) \['ses'\].*rfmlake activate"):
        erase_customer(lake, "c1")
    assert connect(lake).execute("SELECT count(*) FROM silver.orders").fetchone()[0] == 1  # nothing changed


def test_erasure_removes_access_log_lines_and_tokens_of_the_customer(lake: Lake) -> None:
    token = customer_id_token("C00000042", lake_key(lake))
    other = customer_id_token("C00000043", lake_key(lake))
    lake.write_arrow("bronze", "access_logs", pa.table({"line": [
        '1.2.3.4 - C00000042 [01/Jun/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "x"',
        '1.2.3.4 - C00000043 [01/Jun/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "x"',
        '1.2.3.4 - - [01/Jun/2024:10:00:00 +0000] "GET /C00000042 HTTP/1.1" 200 5 "-" "x"']}))
    lake.write_arrow("silver", "access_logs", pa.table({"remote_user_token": [token, other, None]}))
    report = erase_customer(lake, "C00000042")
    assert report.rows_removed == {"bronze.access_logs": 1, "silver.access_logs": 1}


def test_erasure_skips_over_empty_tables(lake: Lake) -> None:
    lake.write_arrow("bronze", "products", pa.table({"name": pa.array([], pa.string())}))
    lake.write_arrow("silver", "orders", pa.table({"order_id": ["o1", "o2"], "customer_id": ["c1", "c2"]}))
    assert erase_customer(lake, "c1", email="a@b.c").rows_removed == {"silver.orders": 1}
