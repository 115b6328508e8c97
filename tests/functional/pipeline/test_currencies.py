"""Currencies through the whole pipeline (`rfmlake run`, no settings file): a landing in one
currency is reported in it, a landing in several fails naming the currencies until rates are
landed, and landed daily rates convert each order with the rate of its day, also when a later
delivery corrects a rate (issue 16)."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow

CENT = Decimal("0.01")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_orders(landing: Path, orders: list[tuple[str, str, str, str, str]],
                 lines: list[tuple[str, int, str, str]] = ()) -> None:
    """orders: (order_id, customer_id, day, currency, total); lines: (order_id, quantity, unit_price, discount)."""
    write_csv(landing / "orders" / "orders.csv", ["order_id", "customer_id", "order_ts", "status", "currency",
                                                   "order_total"],
              [[o, c, f"{day}T10:00:00Z", "completed", cur, total] for o, c, day, cur, total in orders])
    if lines:
        write_csv(landing / "order_items" / "items.csv", ["order_id", "product_id", "quantity", "unit_price",
                                                          "discount"],
                  [[o, f"p{i}", str(q), price, discount] for i, (o, q, price, discount) in enumerate(lines)])


def run(landing: Path, lake: Path, *args: str) -> int:
    return main(["run", "--input", str(landing), "--lake", str(lake), *args])


def monetary(lake: Lake) -> dict[str, Decimal]:
    con = connect(lake)
    try:
        return dict(con.execute("SELECT customer_id, monetary FROM gold.customer_rfm").fetchall())
    finally:
        con.close()


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def test_a_landing_in_one_currency_is_reported_in_it_at_its_own_sums(tmp_path: Path) -> None:
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    orders = [(f"o{i}", f"c{i % 12}", f"2024-0{1 + i % 6}-1{i % 10}", "USD", f"{10 + i * 7.25:.2f}")
              for i in range(40)]
    # a few orders have lines: their amount is the lines net of discounts, not the header total
    lines = [("o1", 2, "19.99", "0"), ("o1", 1, "5.00", "1.50"), ("o7", 3, "3.3333", "0")]
    write_orders(landing, orders, lines)
    assert run(landing, lake.root) == 0

    own: dict[str, Decimal] = defaultdict(Decimal)
    with_lines = {"o1": Decimal("2") * Decimal("19.99") + Decimal("5.00") - Decimal("1.50"),
                  "o7": money(3 * Decimal("3.3333"))}
    for order_id, customer, _, _, total in orders:
        own[customer] += with_lines.get(order_id, Decimal(total))
    assert monetary(lake) == dict(own)
    con = connect(lake)
    assert con.execute("SELECT DISTINCT reporting_currency FROM gold.customer_rfm_features").fetchall() == [("USD",)]
    assert con.execute("SELECT DISTINCT rate_source, rate_to_reporting FROM gold.fct_orders").fetchall() == [
        ("reporting", Decimal("1"))]


def test_several_currencies_need_rates_named_until_landed_then_convert_by_order_date(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    orders = [
        ("e1", "c1", "2024-01-03", "EUR", "100.00"),
        ("u0", "c1", "2024-01-01", "USD", "110.00"),  # before USD's first rate: that first rate
        ("u1", "c2", "2024-01-04", "USD", "110.00"),  # the 01-02 rate applies until 01-05
        ("u2", "c2", "2024-01-05", "USD", "125.00"),  # the rate changed on its day
        ("u3", "c3", "2024-01-07", "USD", "50.00"),   # a Sunday: Friday's rate
        ("u4", "c3", "2024-02-20", "USD", "80.00"),   # after the last rate: the last rate
        ("g1", "c4", "2024-01-09", "GBP", "40.00"),
        ("g2", "c1", "2024-01-10", "GBP", "10.00"),
    ]
    write_orders(landing, orders)

    # 1. No rates: the run stops at the marts and names every currency; nothing reaches gold.
    assert run(landing, lake.root) == 1
    error = capsys.readouterr().err
    assert "the orders are in 3 currencies (EUR, GBP, USD) and no reporting currency is set" in error
    assert "Traceback" not in error
    assert lake.current("gold", "customer_rfm") is None

    # 2. ECB-style rates (base EUR) for USD only: EUR becomes the reporting currency; GBP is named.
    usd = [("2024-01-02", "1.1000"), ("2024-01-05", "1.2500"), ("2024-01-08", "1.0000")]
    write_csv(landing / "currency_rates" / "ecb-2024-01.csv", ["rate_date", "currency", "rate", "base_currency"],
              [[day, "USD", rate, "EUR"] for day, rate in usd])
    assert run(landing, lake.root) == 1
    error = capsys.readouterr().err
    assert "no exchange rate into the reporting currency EUR for GBP (2 orders)" in error
    assert lake.current("gold", "customer_rfm") is None

    # 3. GBP rates arrive in another file: every order converts with the rate of its day.
    write_csv(landing / "currency_rates" / "ecb-gbp.csv", ["rate_date", "currency", "rate", "base_currency"],
              [["2024-01-02", "GBP", "0.8000", "EUR"], ["2024-01-10", "GBP", "0.8500", "EUR"]])
    assert run(landing, lake.root) == 0

    def rate(per_eur: str) -> Decimal:  # units of EUR per unit, as dbt keeps it: 1 / rate at 12 decimals
        return Decimal(1 / float(per_eur)).quantize(Decimal("1e-12"), ROUND_HALF_UP)

    expected_rates = {"e1": (Decimal(1), None), "u0": (rate("1.1000"), "2024-01-02"),
                      "u1": (rate("1.1000"), "2024-01-02"), "u2": (rate("1.2500"), "2024-01-05"),
                      "u3": (rate("1.2500"), "2024-01-05"), "u4": (rate("1.0000"), "2024-01-08"),
                      "g1": (rate("0.8000"), "2024-01-02"), "g2": (rate("0.8500"), "2024-01-10")}
    con = connect(lake)
    applied = {o: (r, d.isoformat() if d else None, s) for o, r, d, s in con.execute(
        "SELECT order_id, rate_to_reporting, rate_date, rate_source FROM gold.fct_orders").fetchall()}
    sources = {"e1": "reporting", "u0": "landed_earliest"}
    assert applied == {o: (*expected_rates[o], sources.get(o, "landed")) for o in expected_rates}
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for order_id, customer, _, _, total in orders:
        expected[customer] += money(Decimal(total) * expected_rates[order_id][0])
    assert monetary(lake) == dict(expected)
    assert con.execute("SELECT DISTINCT reporting_currency FROM gold.customer_rfm_features").fetchall() == [("EUR",)]
    con.close()

    # 4. A correction of the 01-05 USD rate (of one key, the row of the lexicographically last file
    # wins): the next, incremental run re-converts u2 and u3.
    write_csv(landing / "currency_rates" / "revisions" / "2024-01-05.csv", ["rate_date", "currency", "rate",
                                                                              "base_currency"],
              [["2024-01-05", "USD", "1.2000", "EUR"]])
    assert run(landing, lake.root) == 0
    for order_id in ("u2", "u3"):
        expected_rates[order_id] = (rate("1.2000"), "2024-01-05")
    expected = defaultdict(Decimal)
    for order_id, customer, _, _, total in orders:
        expected[customer] += money(Decimal(total) * expected_rates[order_id][0])
    assert monetary(lake) == dict(expected)


def test_fixed_rates_in_settings_are_an_explicit_fallback(tmp_path: Path) -> None:
    """No landed rates: settings give the reporting currency and fixed rates, used as they are."""
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    write_orders(landing, [("o1", "c1", "2024-03-01", "SEK", "1000.00"), ("o2", "c1", "2024-03-02", "EUR", "5.00"),
                           ("o3", "c2", "2024-03-03", "SEK", "99.90")])
    config = tmp_path / "settings.yaml"
    config.write_text("reporting_currency: EUR\ncurrency_rates: {SEK: 0.087}\n")
    assert run(landing, lake.root, "--config", str(config)) == 0
    assert monetary(lake) == {"c1": Decimal("87.00") + Decimal("5.00"), "c2": Decimal("8.69")}
