"""`rfmlake demo` (what `make demo` runs) with the demo journey: the first run admits the customers
who are At Risk and emails the treated, the generator plants orders with a known lift for them, the
second run measures it. The results are in the lake, the report and the dashboard; erasure reaches
the journey's copies."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

import browser
from rfmlake.activation.destinations.outbox import read_outbox
from rfmlake.cli.demo import DEMO_BASE_RATE, DEMO_JOURNEY, DEMO_UPLIFT
from rfmlake.cli.main import main
from rfmlake.journeys.channels import outbox_location
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("journeys-demo")
    capture = root / "demo.out"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo", "--dir", str(root), "--order-lines", "20000"]) == 0
    capture.write_text(buffer.getvalue())
    return root / "lake", buffer.getvalue()


def _latest(lake: Path) -> dict[str, dict]:
    con = connect(Lake(lake))
    cursor = con.execute("SELECT * FROM gold.journey_results WHERE day = (SELECT max(day) FROM gold.journey_results)")
    names = [d[0] for d in cursor.description]
    rows = {row[names.index("variant")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    con.close()
    return rows


def test_the_demo_measures_the_planted_lift(demo: tuple[Path, str]) -> None:
    lake, output = demo
    rows = _latest(lake)
    assert set(rows) == {"holdout", "A", "B"}
    store = JourneyStore(str(lake))
    entries = store.entries().to_pylist()
    assert sum(r["entered"] for r in rows.values()) == len(entries) > 100
    held = Counter(e["variant"] for e in entries)
    assert 0.04 < held["holdout"] / len(entries) < 0.2  # 10% holdout
    for variant in ("A", "B"):
        row = rows[variant]
        # the generator planted the same lift for both variants: each interval holds it
        assert row["lift_low"] <= DEMO_UPLIFT <= row["lift_high"], row
        assert row["conversion_rate_low"] <= DEMO_BASE_RATE + DEMO_UPLIFT <= row["conversion_rate_high"], row
        assert row["sent"] >= row["entered"] - 5  # the offer email (a few have no address)
        assert row["revenue_per_customer"] > rows["holdout"]["revenue_per_customer"]
        assert row["note"]
    assert rows["holdout"]["sent"] == 0 and rows["holdout"]["lift"] is None
    # the demo printed the same numbers
    assert "Journey results (gold.journey_results; planted lift +25 points)" in output
    assert re.search(r"^A\s+" + str(rows["A"]["entered"]) + r"\s+" + str(rows["A"]["sent"]), output, re.MULTILINE)


def test_each_message_went_out_once_and_a_rerun_sends_nothing(demo: tuple[Path, str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    lake, _ = demo
    outbox = read_outbox(outbox_location(str(lake)))
    ids = Counter(m["message_id"] for m in outbox)
    assert ids and max(ids.values()) == 1
    ledger = JourneyStore(str(lake)).sends().to_pylist()
    assert {s["message_id"] for s in ledger if s["status"] == "sent"} == set(ids)
    steps = Counter((m["customer_id"], m["step_id"]) for m in outbox)
    assert max(steps.values()) == 1
    first = [m for m in outbox if m["step_id"] == "offer"]
    assert all(m["email"] and "@" in m["email"] and m["subject"].startswith("We miss you") for m in first)
    assert {m["template"] for m in first} == {"winback_offer", "winback_free_shipping"}
    assert all(("10% off" in m["subject"]) == (m["variant"] == "A") for m in first)
    waiting = sum(1 for e in JourneyStore(str(lake)).entries().to_pylist()
                  if e["status"] == "active" and e["next_step"] == "reminder")
    assert main(["journeys", "run", "--lake", str(lake), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the same as_of: nobody new; only texts held for quiet hours (when the demo ran at night) go out
    # now, or wait again if it is still night
    assert report["entered"] == {} and report["planned"] + sum(report["deferred"].values()) == waiting
    again = read_outbox(outbox_location(str(lake)))
    assert Counter(m["message_id"] for m in again).most_common(1)[0][1] == 1


def test_report_and_dashboard_show_the_journey(demo: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    lake, _ = demo
    assert main(["journeys", "report", "--lake", str(lake), "--journey", DEMO_JOURNEY]) == 0
    text = capsys.readouterr().out
    assert "win_back_at_risk (Win back At Risk customers)" in text and "holdout: the control group" in text
    assert main(["journeys", "report", "--lake", str(lake), "--all-days", "--json"]) == 0
    days = {row["day"] for row in json.loads(capsys.readouterr().out)}
    assert len(days) == 2  # the first run and the one after the planted orders
    out = tmp_path / "dashboard.html"
    assert main(["dashboard", "--lake", str(lake), "--out", str(out)]) == 0
    dom = browser.dump_dom(out)
    figures = dict(re.findall(r'<figure class="chart[^"]*" data-chart="([^"]+)">(.*?)</figure>', dom, re.DOTALL))
    rates = figures[f"journey_rate_{DEMO_JOURNEY}"]
    marks = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'<circle class="mark" data-label="([^"]+)" data-value="([^"]+)"', rates)}
    rows = _latest(lake)
    assert marks == pytest.approx({g: rows[g]["conversion_rate"] for g in ("A", "B", "holdout")})
    lifts = figures[f"journey_lift_{DEMO_JOURNEY}"]
    assert len(re.findall(r'<circle class="mark"', lifts)) == 2
    assert f"journey_days_{DEMO_JOURNEY}" in figures and f"journey_table_{DEMO_JOURNEY}" in figures
    assert "significant at 95%" in figures[f"journey_table_{DEMO_JOURNEY}"] or \
        "too few customers" in figures[f"journey_table_{DEMO_JOURNEY}"]


def test_erasure_reaches_the_journey_state_and_outbox(demo: tuple[Path, str]) -> None:
    lake, _ = demo
    outbox = read_outbox(outbox_location(str(lake)))
    customer = sorted({m["customer_id"] for m in outbox})[0]
    assert main(["erase", "--lake", str(lake), "--customer-id", customer]) == 0
    assert customer not in {m["customer_id"] for m in read_outbox(outbox_location(str(lake)))}
    store = JourneyStore(str(lake))
    assert customer not in {e["customer_id"] for e in store.entries().to_pylist()}
    assert customer not in {s["customer_id"] for s in store.sends().to_pylist()}
    con = connect(Lake(lake))
    assert con.execute("SELECT count(*) FROM gold.journey_assignments WHERE customer_id = ?",
                       [customer]).fetchone()[0] == 0
    con.close()
    audit = (lake / "_system" / "governance" / "erasure_audit.jsonl").read_text().splitlines()[-1]
    removed = json.loads(audit)["downstream_removed"]
    assert removed["journey_entries"] == 1 and removed["journey_outbox"] >= 1


def _demo_defaults() -> dict[str, object]:
    """`rfmlake demo`'s own defaults (order lines, seed, bad rows), read from its parser."""
    import argparse

    from rfmlake.cli.demo import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["demo"])
    return {"order_lines": args.order_lines, "seed": args.seed, "bad_rows": not args.clean}


def test_the_demo_data_gets_3_to_8_clusters_of_at_least_2_percent(demo: tuple[Path, str]) -> None:
    """Issue 16: on the demo's data (`rfmlake demo` at its default size and seed, what `make demo`
    runs; the fixture's run is that one) the automatic k gives 3 to 8 clusters, each holding at least
    2% of the customers (docs/reports.md), in the first run and in the second."""
    assert _demo_defaults() == {"order_lines": 20_000, "seed": 7, "bad_rows": True}  # the fixture's run
    lake, _ = demo
    reports = [json.loads(p.read_text()) for p in sorted((lake / "_system" / "runs").glob("*/segmentation_report.json"))]
    assert len(reports) == 2
    for report in reports:
        assert report["k_selection"].startswith("automatic"), report["k_reason"]
    con = connect(Lake(lake))
    try:
        sizes = dict(con.execute("SELECT cluster_id, count(*) FROM gold.customer_rfm GROUP BY 1").fetchall())
    finally:
        con.close()
    customers = sum(sizes.values())
    assert customers > 3000  # the demo's few thousand customers, not a sample
    assert 3 <= len(sizes) <= 8 and len(sizes) == reports[-1]["k"], (sizes, reports[-1]["k_reason"])
    assert min(n / customers for n in sizes.values()) >= 0.02, (sizes, reports[-1]["k_reason"])
