"""A shop in its first weeks: the whole pipeline on landings of 1, 2, 5 and 30 customers, with and
without repeat orders (issue 21). Every run exits 0, publishes scores and named segments for every
customer, and says in the run summary why each model it could not fit was skipped; `rfmlake report`
and `rfmlake dashboard` build on what exists and say the same (docs/pipeline.md, "Little data"): the
report lists every rule segment, with 0 customers where nobody is, and an audience of zero is a sync
that sends nothing and counts its skipped customers by reason. A shop above the value minimums whose
data the value models cannot fit gets a failed fit with its diagnostics, not a failed run."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from report_pages import page_text, render_dashboard, render_report, section_rows, section_text
from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.reporting import build_quality_report, find_run
from rfmlake.rfm.rules import SegmentRules
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

START = datetime(2026, 9, 1, 10, 0)
RULE_SEGMENTS = SegmentRules.load(load_settings().segmentation.rules_file, expected_n_bins=5).names


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
    sizes = dict(con.execute("SELECT rfm_segment, count(*) FROM gold.customer_rfm GROUP BY 1").fetchall())
    assert con.execute("SELECT count(*) FROM gold.segment_membership_history").fetchone()[0] == customers
    assert con.execute("SELECT count(*) FROM gold.customer_value").fetchone()[0] == 0
    profiles, valued = con.execute(
        "SELECT count(*), count(value_json) FROM gold.customer_profile WHERE frequency IS NOT NULL").fetchone()
    assert (profiles, valued) == (customers, 0)  # profiles without value columns
    con.close()

    # Activation: customers with an even number consented, except in the one-customer shop, where
    # nobody did: an audience of zero is a sync that sends nothing and reports its skipped reasons.
    consenting = 0 if customers == 1 else (customers + 1) // 2
    activation = next(s for s in summary["stages"] if s["name"] == "activate")["summary"]
    assert {d["status"] for d in activation.values()} == {"synced"}
    for destination in activation.values():
        assert destination["sent"] == consenting and destination["failed"] == 0
        assert destination["skipped"] == ({"no_marketing_consent": customers - consenting}
                                          if consenting < customers else {})

    # The report and the dashboard are built on what exists, and say what was skipped and why.
    quality = build_quality_report(lake.root, find_run(lake.root))
    assert quality["customer_value"]["status"] == "skipped"
    assert quality["segmentation"]["customers_scored"] == customers
    report = render_report(lake.root, tmp_path / "report.html")
    text = page_text(report)
    value_reason = value_notes[0].removeprefix("customer_value: ")
    assert ("Skipped: nothing was fitted or published (gold.customer_value is empty for this run). "
            + value_reason) in text
    if clustering_notes:
        assert clustering_notes[0].removeprefix("segmentation: clustering skipped: ") in section_text(
            report, "k-selection")
    # Every rule segment is listed, with 0 customers where nobody is in it.
    rows = {row[0]: row[1] for row in section_rows(report, "segments")[1:]}
    assert set(rows) == set(RULE_SEGMENTS)
    assert {name: int(n.replace(",", "")) for name, n in rows.items() if n != "0"} == sizes
    assert all(rows[name] == "0" for name in set(RULE_SEGMENTS) - set(sizes))
    assert customers > 5 or len(sizes) < len(RULE_SEGMENTS)  # so a small shop has empty segments to show
    dashboard = page_text(render_dashboard(lake.root, tmp_path / "dashboard.html"))
    assert "gold.customer_value is empty: the customer value stage was skipped in the latest run" in dashboard


def write_subscription_landing(root: Path, customers: int, deliveries: int) -> None:
    """A subscription box shop: every customer signed up on the same day and has been billed their
    plan's price every 7 days since, without a miss. Enough customers and repeaters for the value
    minimums, but no spread in purchase rates, dropout or spend across customers for BG/NBD and
    Gamma-Gamma to estimate: their likelihoods are maximised at the search bound."""
    (root / "customers").mkdir(parents=True)
    (root / "orders").mkdir()
    with (root / "customers" / "customers.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "marketing_opt_in"])
        writer.writerows([f"S{i:03d}", f"subscriber{i}@example.com", "true"] for i in range(customers))
    with (root / "orders" / "orders.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "order_ts", "status", "currency", "order_total"])
        for i in range(customers):
            for week in range(deliveries):
                when = START + timedelta(days=7 * week, minutes=i)
                writer.writerow([f"S{i:03d}-{week:02d}", f"S{i:03d}", when.isoformat() + "Z", "completed", "EUR",
                                 f"{19.0 + i % 40:.2f}"])


def test_a_fit_the_data_cannot_support_is_a_failed_fit_not_a_failed_run(tmp_path: Path) -> None:
    """Issue 21: a value fit that ends at absurd parameters is reported as a failed fit with its
    diagnostics, publishes no values, and the run (segments, profiles, activation) succeeds."""
    write_subscription_landing(tmp_path / "landing", customers=60, deliveries=9)
    lake = Lake(tmp_path / "lake")
    assert main(["run", "--input", str(tmp_path / "landing"), "--lake", str(lake.root)]) == 0

    run_dir = find_run(lake.root)
    summary = json.loads((run_dir / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["stages"]}
    assert status["customer_value"] == "skipped" and set(status.values()) <= {"succeeded", "skipped"}, status
    value = json.loads((run_dir / "customer_value_report.json").read_text())
    # Above the minimums (60 customers, all repeaters, 40 distinct spends): the fit was tried and failed.
    assert (value["customers"], value["repeat_customers"]) == (60, 60)
    assert value["skipped"].startswith("the fit failed, nothing published: parameters at the search bound (BG/NBD")
    assert f"customer_value: {value['skipped']}" in summary["notes"]
    bgnbd = value["diagnostics"]["bgnbd"]
    assert bgnbd["fit"]["at_bound"] and bgnbd["fit"]["customers"] == 60
    assert {"r", "alpha", "a", "b"} <= set(bgnbd) and "gamma_gamma" in value["diagnostics"]
    assert not (lake.models_dir / "value").exists()  # no model stored for a later run to predict with

    con = connect(lake)
    assert con.execute("SELECT count(*) FROM gold.customer_value").fetchone()[0] == 0
    assert con.execute("SELECT count(*), count(rfm_segment) FROM gold.customer_rfm").fetchone() == (60, 60)
    assert con.execute("SELECT count(*), count(value_json) FROM gold.customer_profile "
                       "WHERE frequency IS NOT NULL").fetchone() == (60, 0)
    con.close()
    activation = next(s for s in summary["stages"] if s["name"] == "activate")["summary"]
    assert all(d["sent"] == 60 for d in activation.values())

    # The report shows the reason and the parameters where each fit stopped.
    report = render_report(lake.root, tmp_path / "report.html")
    section = section_text(report, "customer-value")
    assert ("Skipped: nothing was fitted or published (gold.customer_value is empty for this run). "
            + value["skipped"]) in section
    assert "BG/NBD where the fit stopped" in section and "Gamma-Gamma where the fit stopped" in section
    at_bound = [row[1] for row in section_rows(report, "customer-value") if row[0] == "parameters at the search bound"]
    gamma_gamma = value["diagnostics"]["gamma_gamma"]["fit"]["at_bound"]
    assert at_bound == [", ".join(bgnbd["fit"]["at_bound"]), ", ".join(gamma_gamma) or "none"]
