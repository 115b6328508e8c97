"""rfmlake.generate: layout, contract columns, determinism, realism, bad rows, output-folder safety."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from generate_landing_reader import is_iso, quarantine_counts, read_rows

from rfmlake.contract import ENTITIES, ORDER_STATUSES, QuarantineReason
from rfmlake.errors import RfmlakeError
from rfmlake.generate import MANIFEST_NAME, GenerationError, generate_landing
from rfmlake.generate.identity import TRUTH_NAME

END = date(2026, 10, 31)


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST_NAME).read_text())


def orders_frame(root: Path) -> pd.DataFrame:
    rows, _ = read_rows(root / "orders")
    frame = pd.DataFrame([row for _, row in rows])
    frame["total"] = frame["order_total"].map(lambda v: Decimal(str(v)))
    return frame


def utc_day(text: str) -> date:
    """The UTC date of an ISO 8601 timestamp; one without an offset is UTC (the contract's rule)."""
    moment = datetime.fromisoformat(text)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def rates_frame(root: Path) -> pd.DataFrame:
    frame = pd.read_csv(root / "currency_rates" / "eur-reference-rates.csv", dtype=str)
    frame["rate_date"] = pd.to_datetime(frame["rate_date"], format="%Y-%m-%d")
    return frame


def eur_per_unit(orders: pd.DataFrame, rates: pd.DataFrame) -> pd.Series:
    """Units of EUR per unit of each order's currency on its UTC day: the latest landed rate on or
    before it (the pipeline's rule), 1 for EUR."""
    # (parsed one by one: pandas reads a bare time among offset ones in another row's offset)
    day = pd.to_datetime([utc_day(text) for text in orders["order_ts"]])
    keyed = pd.DataFrame({"day": day, "currency": orders["currency"], "row": range(len(orders))}).sort_values("day")
    quotes = rates.assign(eur=1 / rates["rate"].astype(float)).sort_values("rate_date")
    matched = pd.merge_asof(keyed, quotes, left_on="day", right_on="rate_date", by="currency", direction="backward")
    per_unit = matched.set_index("row")["eur"].sort_index()
    return per_unit.where(orders["currency"].to_numpy() != "EUR", 1.0)


def lines_frame(root: Path) -> pd.DataFrame:
    return pd.concat([pq.read_table(p).to_pandas() for p in sorted((root / "order_items").glob("*.parquet"))])


# ----------------------------------------------------------------------------- layout and contract


def test_every_entity_has_files_in_its_folder_with_the_contract_columns(clean_landing: Path) -> None:
    for name, entity in ENTITIES.items():
        files = sorted((clean_landing / name).iterdir())
        assert files, f"no files for {name}"
        if name == "access_logs":
            assert all(re.fullmatch(r"web-\d-\d{4}-\d{2}-\d{2}\.log", f.name) for f in files)
            continue
        rows, malformed = read_rows(clean_landing / name)
        assert malformed == 0
        columns = {c.lower() for c in rows[0][1]}
        assert {c.lower() for c in entity.required} <= columns, name
        assert columns - {c.lower() for c in entity.column_names} <= {"loyalty_tier", "sales_channel"}
    assert not (clean_landing / "customers" / MANIFEST_NAME).exists()
    assert (clean_landing / MANIFEST_NAME).is_file()


def test_formats_mix_case_variants_and_unknown_columns(clean_landing: Path) -> None:
    suffixes = {name: {p.suffix for p in (clean_landing / name).iterdir()} for name in ENTITIES}
    assert suffixes["orders"] == {".csv", ".jsonl"}
    assert suffixes["order_items"] == {".parquet"}
    assert len(list((clean_landing / "order_items").glob("*.parquet"))) >= 2
    assert suffixes["events"] == {".jsonl"} and suffixes["customers"] == {".csv"}
    header = (clean_landing / "products" / "products.csv").read_text().splitlines()[0].split(",")
    assert [h.lower() for h in header] != header  # names differ from the contract only by case
    assert "loyalty_tier" in (clean_landing / "customers" / "customers.csv").read_text().splitlines()[0]
    first_json = json.loads((clean_landing / "orders" / "orders-0002-recent.jsonl").read_text().splitlines()[0])
    assert "sales_channel" in first_json


def test_manifest_counts_every_row_of_every_file(clean_landing: Path) -> None:
    data = manifest(clean_landing)
    actual: dict[str, int] = {}
    for path in sorted(p for p in clean_landing.rglob("*") if p.is_file() and p.name not in (MANIFEST_NAME, TRUTH_NAME)):
        relative = path.relative_to(clean_landing).as_posix()
        if path.suffix == ".parquet":
            actual[relative] = pq.read_metadata(path).num_rows
        else:
            lines = len(path.read_text().splitlines())
            actual[relative] = lines - 1 if path.suffix == ".csv" else lines
    assert data["files"] == actual
    assert sum(data["rows_per_entity"].values()) == sum(actual.values())
    assert data["parameters"] == {"order_lines": 30_000, "seed": 11, "bad_rows": False,
                                  "end_date": "2026-10-31", "years": 3.0}
    assert data["injected_bad_rows"] == {}


def test_order_lines_parameter_is_the_exact_number_of_lines(clean_landing: Path) -> None:
    assert len(lines_frame(clean_landing)) == 30_000


def test_clean_data_trips_no_contract_rule(clean_landing: Path) -> None:
    assert quarantine_counts(clean_landing) == {}


def test_header_totals_equal_the_sum_of_lines_net_of_discounts(clean_landing: Path) -> None:
    lines = lines_frame(clean_landing)
    lines["net"] = [
        (Decimal(str(p)) * q - Decimal(str(d if pd.notna(d) else 0))).quantize(Decimal("0.01"))
        for q, p, d in zip(lines["quantity"], lines["unit_price"], lines["discount"], strict=True)
    ]
    sums = lines.groupby("order_id")["net"].sum()
    orders = orders_frame(clean_landing).set_index("order_id")
    with_lines = orders.loc[sums.index]
    assert (with_lines["total"] == sums).all()
    assert lines["discount"].notna().any() and lines["discount"].isna().any()
    header_only = orders.index.difference(sums.index)
    assert 0.03 < len(header_only) / len(orders) < 0.15
    assert set(lines["order_id"]) <= set(orders.index)


# ----------------------------------------------------------------------------- realism


def test_distribution_looks_like_an_online_shop(clean_landing: Path) -> None:
    orders = orders_frame(clean_landing)
    orders["eur"] = orders["total"].astype(float).to_numpy() * eur_per_unit(orders, rates_frame(clean_landing)).to_numpy()
    orders["ts"] = pd.to_datetime(orders["order_ts"], utc=True, format="ISO8601")
    completed = orders[orders["status"] == "completed"]
    per_customer = completed.groupby("customer_id").agg(n=("order_id", "size"), revenue=("eur", "sum"),
                                                        first=("ts", "min"), last=("ts", "max"))
    one_time_share = (per_customer["n"] == 1).mean()
    assert 0.55 <= one_time_share <= 0.70, one_time_share
    revenue = per_customer["revenue"].astype(float).sort_values(ascending=False)
    top_share = revenue.head(len(revenue) // 10).sum() / revenue.sum()
    assert top_share > 0.40, top_share
    end = pd.Timestamp(END, tz="UTC")
    churned = per_customer[(per_customer["n"] >= 2) & (per_customer["last"] < end - pd.Timedelta(days=365))]
    assert len(churned) > 0.05 * (per_customer["n"] >= 2).sum()
    assert (per_customer["first"] > end - pd.Timedelta(days=60)).sum() > 0.03 * len(per_customer)
    shares = orders["status"].value_counts(normalize=True)
    assert set(shares.index) == set(ORDER_STATUSES)
    assert 0.75 < shares["completed"] < 0.92 and 0.02 < shares["returned"] < 0.15
    assert 0.02 < shares["cancelled"] < 0.10 and shares["pending"] < 0.05
    assert {"EUR", "USD", "GBP", "SEK"} <= set(orders["currency"])
    customers = pd.read_csv(clean_landing / "customers" / "customers.csv", dtype=str, keep_default_na=False)
    known = set(customers["customer_id"])
    guests = set(orders["customer_id"]) - known
    assert guests and len(guests) < 0.15 * orders["customer_id"].nunique()
    assert len(known - set(orders["customer_id"])) > 0.05 * len(known)  # CRM customers who never ordered
    assert set(customers["marketing_opt_in"]) == {"true", "false", ""}
    stamps = pd.concat([orders["order_ts"], customers["created_at"]])
    with_offset = stamps.str.contains(r"[+-]\d{2}:\d{2}$")
    assert 0.2 < with_offset.mean() < 0.8 and stamps.map(is_iso).all()
    assert customers["email"].str.contains("@").mean() > 0.8


def test_daily_rates_cover_every_order_and_convert_prices_back_to_the_catalog(clean_landing: Path) -> None:
    """The landed rates (base EUR, weekdays, moving over time) have a rate on or before every order
    of every currency but EUR, and converting a line's unit price back with the rate of its order's
    day gives the product's EUR list price (up to the cent the local price was rounded to)."""
    rates = rates_frame(clean_landing)
    orders = orders_frame(clean_landing)
    assert set(rates["base_currency"]) == {"EUR"}
    assert set(rates["currency"]) == set(orders["currency"]) - {"EUR"}
    assert (rates["rate_date"].dt.dayofweek < 5).all()
    assert not rates.duplicated(["rate_date", "currency"]).any()
    usd = rates[rates["currency"] == "USD"]["rate"].astype(float)
    assert usd.nunique() > 100 and usd.min() > 0.9 and usd.max() < 1.3  # moves around 1 / 0.92
    assert rates["rate_date"].min().date() < min(utc_day(text) for text in orders["order_ts"])
    per_unit = eur_per_unit(orders, rates)
    assert per_unit.notna().all()
    lines = lines_frame(clean_landing).merge(orders.assign(per_unit=per_unit.to_numpy())[
        ["order_id", "currency", "per_unit"]], on="order_id")
    products = pd.read_csv(clean_landing / "products" / "products.csv", dtype=str).rename(columns=str.lower)
    lines = lines.merge(products[["product_id", "price"]], on="product_id")
    foreign = lines[lines["currency"] != "EUR"]
    back = foreign["unit_price"] * foreign["per_unit"]
    error = (back - foreign["price"].astype(float)).abs()
    assert len(foreign) > 1000 and (error <= 0.005 * foreign["per_unit"] + 1e-9).all(), error.max()


def test_events_cover_known_and_anonymous_visitors(clean_landing: Path) -> None:
    rows, _ = read_rows(clean_landing / "events")
    events = pd.DataFrame([row for _, row in rows])
    assert set(events["event_type"]) == {"page_view", "product_view", "add_to_cart", "purchase"}
    assert events["customer_id"].notna().any() and events["customer_id"].isna().any()
    assert events["anonymous_id"].notna().all()
    assert events["event_id"].is_unique and events["event_ts"].map(is_iso).all()


def test_aws_guidance_csv_has_the_guidance_columns_and_formats(clean_landing: Path) -> None:
    frame = pd.read_csv(clean_landing / "aws_rfm_guidance" / "rfm-guidance-export.csv", dtype=str)
    assert list(frame.columns) == list(ENTITIES["aws_rfm_guidance"].column_names)
    assert set(frame["EventName"]) == {"VIEWED", "PROCESSED", "PURCHASED"}
    assert frame["Date"].str.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}").all()
    email = frame["ChannelType"] == "EMAIL"
    assert frame.loc[email, "Address"].str.fullmatch(r"[^@\s]+@[^@\s]+\.\w+").all()
    assert frame.loc[~email, "Address"].str.fullmatch(r"\+\d{8,15}").all()
    assert set(frame["ChannelType"]) == {"EMAIL", "SMS"}


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = generate_landing(tmp_path / "a", order_lines=2_000, seed=5, bad_rows=True)
    generate_landing(tmp_path / "b", order_lines=2_000, seed=5, bad_rows=True)
    generate_landing(tmp_path / "c", order_lines=2_000, seed=6, bad_rows=True)
    assert tree_hash(tmp_path / "a") == tree_hash(tmp_path / "b")
    assert tree_hash(tmp_path / "a") != tree_hash(tmp_path / "c")
    assert first.rows_per_entity == manifest(tmp_path / "a")["rows_per_entity"]


def test_end_date_and_years_set_the_window(tmp_path: Path) -> None:
    generate_landing(tmp_path / "w", order_lines=1_000, end_date=date(2025, 6, 30), years=1.0)
    stamps = pd.to_datetime(orders_frame(tmp_path / "w")["order_ts"], utc=True, format="ISO8601")
    assert stamps.max() < pd.Timestamp("2025-07-01", tz="UTC")
    assert stamps.min() >= pd.Timestamp("2024-06-29", tz="UTC")
    logs = sorted(p.name for p in (tmp_path / "w" / "access_logs").iterdir())
    assert logs[-1] == "web-2-2025-06-30.log"


# ----------------------------------------------------------------------------- bad rows


def test_injected_bad_rows_match_what_is_in_the_files(bad_landing: Path) -> None:
    data = manifest(bad_landing)
    assert quarantine_counts(bad_landing) == data["injected_bad_rows"]
    reasons = {reason for per_entity in data["injected_bad_rows"].values() for reason in per_entity}
    # erased_customer comes from an erasure request, never from landing data
    assert reasons == {r.value for r in QuarantineReason} - {QuarantineReason.ERASED_CUSTOMER.value}
    details = data["injected_bad_row_details"]
    assert len(details) == sum(n for e in data["injected_bad_rows"].values() for n in e.values())
    assert all(d["file"] in data["files"] for d in details)


def test_bad_rows_use_the_documented_values(bad_landing: Path) -> None:
    texts = {p.relative_to(bad_landing).as_posix(): p.read_text() for p in bad_landing.rglob("*.csv")}
    texts |= {p.relative_to(bad_landing).as_posix(): p.read_text() for p in bad_landing.rglob("*.jsonl")}
    everything = "\n".join(texts.values())
    for value in (",two,", ",abc,", ",x\n", "31/02/2024 25:61", "yesterday", ",XXX,", "shipped-ish", ",n/a,"):
        assert value in everything, value
    customers = texts["customers/customers.csv"].splitlines()
    assert customers[-1].count('"') == 1  # the unclosed quote is the file's last line
    lines = lines_frame(bad_landing)
    assert lines.duplicated().sum() == manifest(bad_landing)["injected_bad_rows"]["order_items"]["duplicate"]
    first = pq.read_table(bad_landing / "order_items" / "order_items-00001.parquet").to_pandas()
    assert first.duplicated().sum() > 0  # duplicates in the same file, and (above) across files


# ----------------------------------------------------------------------------- output folder safety


def test_refuses_a_non_empty_folder_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GenerationError, match="not empty.*overwrite"):
        generate_landing(tmp_path, order_lines=1_000)


def test_overwrite_replaces_only_what_was_generated(tmp_path: Path) -> None:
    generate_landing(tmp_path, order_lines=2_000, seed=1)
    (tmp_path / "notes.txt").write_text("mine")
    generate_landing(tmp_path, order_lines=1_000, seed=2, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert manifest(tmp_path)["parameters"]["order_lines"] == 1_000
    assert len(lines_frame(tmp_path)) == 1_000
    assert not list(tmp_path.glob(".rfmlake-generate*"))


def test_overwrite_refuses_foreign_files_in_entity_folders(tmp_path: Path) -> None:
    generate_landing(tmp_path, order_lines=1_000)
    (tmp_path / "orders" / "from-the-erp.csv").write_text("order_id\n1\n")
    with pytest.raises(GenerationError, match="did not write"):
        generate_landing(tmp_path, order_lines=1_000, overwrite=True)
    assert (tmp_path / "orders" / "from-the-erp.csv").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_lines": 49}, "between 50 and 10,000,000"),
        ({"order_lines": 10_000_001}, "between 50 and 10,000,000"),
        ({"seed": -1}, "seed"),
        ({"years": 0.1}, "years"),
        ({"end_date": "2026-10-31"}, "end_date"),
    ],
)
def test_bad_parameters_raise_a_clear_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(RfmlakeError, match=message):
        generate_landing(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_progress_reports_every_entity(tmp_path: Path) -> None:
    seen: dict[str, tuple[int, int]] = {}
    generate_landing(tmp_path, order_lines=1_000, progress=lambda e, done, total: seen.__setitem__(e, (done, total)))
    assert set(seen) == set(ENTITIES)
    assert all(done == total for done, total in seen.values())


@pytest.mark.slow
def test_200k_lines_run_in_bounded_memory(tmp_path: Path) -> None:
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from rfmlake.generate import generate_landing\n"
        f"generate_landing(Path({str(tmp_path / 'big')!r}), order_lines=200_000, bad_rows=True)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    peak_mb = int(done.stdout.strip()) / 1024
    assert peak_mb < 1_000, f"peak RSS {peak_mb:.0f} MB"
    assert manifest(tmp_path / "big")["notes"]["clean_order_lines"] == 200_000


def test_each_buyer_favours_a_category_and_a_brand(clean_landing: Path) -> None:
    """Planted affinities (so recommendations have signal to find): a repeat buyer's lines fall in
    their most bought category and brand far more often than the catalogue's shares would give."""
    products = pd.read_csv(clean_landing / "products" / "products.csv", dtype=str).rename(columns=str.lower)
    lines = lines_frame(clean_landing).merge(orders_frame(clean_landing)[["order_id", "customer_id"]], on="order_id")
    lines = lines.merge(products[["product_id", "category", "brand"]], on="product_id")
    repeaters = lines.groupby("customer_id")["order_id"].transform("nunique") >= 3
    for column, margin in (("category", 0.15), ("brand", 0.05)):
        top_share = (lines[repeaters].groupby("customer_id")[column]
                     .agg(lambda values: values.value_counts(normalize=True).iloc[0]).mean())
        # a customer's top share over random picks with the catalogue's shares, for comparison
        shuffled = lines[repeaters].assign(**{column: lines[repeaters][column].sample(frac=1, random_state=1).values})
        chance = (shuffled.groupby("customer_id")[column]
                  .agg(lambda values: values.value_counts(normalize=True).iloc[0]).mean())
        assert top_share > chance + margin, (column, top_share, chance)
