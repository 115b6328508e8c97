"""The generator plants identity ground truth (rfmlake.generate.identity) the quality report measures
merge precision and recall against: the truth file must say what the landing files really hold."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from generate_landing_reader import read_rows

from rfmlake.generate import generate_landing
from rfmlake.generate.identity import SECOND_CRM_FILE, TRUTH_NAME


def _customers(landing: Path) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((landing / "customers").glob("*.csv"))])


def _events(landing: Path) -> pd.DataFrame:
    rows, _ = read_rows(landing / "events")
    return pd.DataFrame([row for _, row in rows])


def test_duplicates_are_the_same_person_with_typos_and_split_orders(clean_landing: Path) -> None:
    truth = json.loads((clean_landing / TRUTH_NAME).read_text())
    customers = _customers(clean_landing).set_index("customer_id")
    pairs = truth["duplicate_customer_pairs"]
    assert len(pairs) >= 0.02 * len(customers)
    second = pd.read_csv(clean_landing / "customers" / SECOND_CRM_FILE, dtype=str, keep_default_na=False)
    assert sorted(second["customer_id"]) == sorted(d for _, d in pairs)
    same_email = typo_name = 0
    for original, duplicate in pairs:
        a, b = customers.loc[original], customers.loc[duplicate]
        assert a["country"] == b["country"] and a["city"] == b["city"]
        same_email += a["email"] != "" and a["email"] == b["email"]
        typo_name += (a["first_name"].lower(), a["last_name"]) != (b["first_name"].lower(), b["last_name"])
    # A mix: some are joined by the exact email, many need fuzzy matching.
    assert 0.15 * len(pairs) < same_email < 0.6 * len(pairs)
    assert typo_name > 0.2 * len(pairs)
    # The duplicated repeat buyers' later orders are placed under the second id.
    orders = pd.concat([pd.read_csv(p, dtype=str) for p in (clean_landing / "orders").glob("*.csv")]
                       + [pd.read_json(p, lines=True, dtype=str) for p in (clean_landing / "orders").glob("*.jsonl")])
    duplicates = {d for _, d in pairs}
    assert orders["customer_id"].isin(duplicates).sum() > 0


def test_other_customers_never_share_an_email_or_phone(clean_landing: Path) -> None:
    customers = _customers(clean_landing)
    truth = json.loads((clean_landing / TRUTH_NAME).read_text())
    duplicates = {d for _, d in truth["duplicate_customer_pairs"]}
    first = customers[~customers["customer_id"].isin(duplicates)]
    for column in ("email", "phone"):
        given = first.loc[first[column] != "", column].str.replace(" ", "")
        assert given.is_unique, column


def test_devices_of_the_truth_appear_as_described(clean_landing: Path) -> None:
    truth = json.loads((clean_landing / TRUTH_NAME).read_text())
    events = _events(clean_landing)
    by_device = events.groupby("anonymous_id")
    for device, customer in truth["pre_signup_devices"]:
        rows = by_device.get_group(device).sort_values("event_ts")
        assert set(rows["customer_id"].dropna()) == {customer}
        assert rows["customer_id"].isna().iloc[0]  # anonymous first, signed in later
    for shared in truth["shared_devices"]:
        rows = by_device.get_group(shared["anonymous_id"])
        assert set(rows["customer_id"].dropna()) == set(shared["customer_ids"])
    # Outside the shared devices, no device carries two customer ids.
    per_device = events.dropna(subset=["customer_id"]).groupby("anonymous_id")["customer_id"].nunique()
    assert set(per_device[per_device > 1].index) == {s["anonymous_id"] for s in truth["shared_devices"]}


def test_same_seed_same_truth(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_landing(a, order_lines=800, seed=5)
    generate_landing(b, order_lines=800, seed=5)
    assert (a / TRUTH_NAME).read_bytes() == (b / TRUTH_NAME).read_bytes()
    assert pq.read_table(next((a / "order_items").glob("*.parquet"))).num_rows > 0
