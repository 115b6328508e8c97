"""A shop in its first weeks: the whole pipeline on landings of 1, 2, 5 and 30 customers, with and
without repeat orders (issue 21). Every run exits 0, publishes scores and named segments for every
customer, and says in the run summary why each model it could not fit was skipped; the report and
the dashboard build on what exists."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.dashboard.page import write_dashboard
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.reporting import build_quality_report, find_run

pytestmark = pytest.mark.slow

START = datetime(2026, 9, 1, 10, 0)


def write_landing(root: Path, customers: int, repeat: bool) -> None:
    """Landing contract v1 (README): customers/ and orders/ as CSV with a header. With `repeat`, each
    customer orders 2 or 3 times on different days, and the first customer twice on one day."""
    (root / "customers").mkdir(parents=True)
    (root / "orders").mkdir()
    with (root / "customers" / "customers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "marketing_opt_in"])
        for i in range(customers):
            # The one-customer shop has no consent at all: an audience of zero.
            writer.writerow([f"C{i:03d}", f"buyer{i}@example.com", "false" if customers == 1 else str(i % 2 == 0)])
    with (root / "orders" / "orders.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "order_ts", "status", "currency", "order_total"])
        number = 0
        for i in range(customers):
            first = START + timedelta(days=(i * 7) % 45, hours=i % 5)
            days = [0] if not repeat else [0, 3 + i % 11] + ([19 + i % 7] if i % 3 == 0 else [])
            if repeat and i == 0:
                days.append(0)  # a second order on the first day
            for day in days:
                number += 1
                when = first + timedelta(days=day, minutes=number)
                writer.writerow([f"O{number:05d}", f"C{i:03d}", when.isoformat() + "Z", "completed", "EUR",
                                 f"{12.5 + (i * 17 + number * 5) % 140:.2f}"])


CASES = [(n, repeat) for n in (1, 2, 5, 30) for repeat in (False, True)]


@pytest.mark.parametrize(("customers", "repeat"), CASES, ids=[f"{n}-{'repeat' if r else 'once'}" for n, r in CASES])
def test_a_small_shop_gets_segments_and_a_note_for_every_skipped_model(
        tmp_path: Path, customers: int, repeat: bool) -> None:
    write_landing(tmp_path / "landing", customers, repeat)
    lake = Lake(tmp_path / "lake")
    assert main(["run", "--input", str(tmp_path / "landing"), "--lake", str(lake.root)]) == 0

    summary = json.loads((find_run(lake.root) / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["stages"]}
    assert set(status.values()) <= {"succeeded", "skipped"}, status
    assert status["segmentation"] == "succeeded"
    # Below value.min_customers (50): skipped with the stage's own numbers, nothing published.
    assert status["customer_value"] == "skipped"
    value_notes = [n for n in summary["notes"] if n.startswith("customer_value: ")]
    assert value_notes and value_notes[0].startswith(f"customer_value: {customers} customer(s), ")
    assert "at least 50 customers" in value_notes[0]
    clustering_notes = [n for n in summary["notes"] if n.startswith("segmentation: clustering skipped")]
    assert bool(clustering_notes) == (customers < 30)  # 30 customers make 3 clusters of 10

    con = connect(lake)
    rows, segments, labels = con.execute(
        "SELECT count(*), count(rfm_segment), count(DISTINCT cluster_label) FROM gold.customer_rfm").fetchone()
    assert rows == segments == customers
    assert labels == (1 if customers < 30 else 3)
    assert con.execute("SELECT count(*) FROM gold.segment_membership_history").fetchone()[0] == customers
    assert con.execute("SELECT count(*) FROM gold.customer_value").fetchone()[0] == 0
    profiles, valued = con.execute(
        "SELECT count(*), count(value_json) FROM gold.customer_profile WHERE frequency IS NOT NULL").fetchone()
    assert (profiles, valued) == (customers, 0)  # profiles without value columns
    con.close()

    activation = next(s for s in summary["stages"] if s["name"] == "activate")["summary"]
    sent = sum(d["sent"] for d in activation.values())
    if customers == 1:
        assert sent == 0  # nobody consented: an audience of zero is a sync that sends nothing
    # The report and the dashboard are built on what exists.
    quality = build_quality_report(lake.root, find_run(lake.root))
    assert quality["customer_value"]["status"] == "skipped"
    assert quality["segmentation"]["customers_scored"] == customers
    assert write_dashboard(lake, tmp_path / "dashboard.html").is_file()
