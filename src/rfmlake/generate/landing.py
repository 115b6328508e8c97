"""Seeded synthetic landing data for every entity of the landing contract (DESIGN.md section 3).

The shape of the data is what an RFM product must cope with: heavy-tailed spend, mostly one-time
buyers, churned and brand-new customers, returns and cancellations, several currencies, guest
checkouts, CRM customers who never ordered, clickstream for known and anonymous visitors.

How it scales: the per-customer and per-order plan lives in compact numpy arrays (a few bytes per
order); order headers, lines and events are then produced and written chunk by chunk in time order,
so memory is bounded by one chunk whatever order_lines is. Every random draw comes from a generator
seeded by (seed, stream, chunk), so the same parameters give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rfmlake.contract import ENTITIES, QuarantineReason
from rfmlake.errors import RfmlakeError
from rfmlake.generate import identity, words
from rfmlake.generate.bad_rows import (
    BAD_KEYS,
    BAD_ORDER_TOTAL,
    BAD_QUANTITY,
    BAD_UNIT_PRICE,
    IMPLAUSIBLE_DATES,
    UNKNOWN_CURRENCY,
    UNKNOWN_STATUS,
    UNPARSABLE_DATES,
    UNPARSABLE_LOG_LINES,
    BadRowBook,
    per_kind,
)
from rfmlake.generate.formats import (
    FileCounter,
    RollingParquetWriter,
    append_csv,
    append_jsonl,
    append_raw_lines,
    cat,
    clf_timestamps,
    ids,
    ipv4,
    iso_timestamps,
    iso_utc_z,
    money,
    padded,
)

Progress = Callable[[str, int, int], None]

MANIFEST_NAME = "_generator_manifest.json"
MIN_ORDER_LINES = 50  # a shop in its first weeks (`rfmlake demo --order-lines 50`)
MAX_ORDER_LINES = 10_000_000
DAY = 86_400
# Shares of a buyer's picks drawn from their favourite category, then brand (_plan_affinities).
AFFINITY_SHARES = (0.5, 0.2)
ORDER_CHUNK = 50_000  # orders per chunk; fixed, because chunk boundaries feed the seeds
CUSTOMER_CHUNK = 100_000
ORDER_STATUSES = ("completed", "pending", "cancelled", "returned")
ORDER_COLUMNS = ["order_id", "customer_id", "order_ts", "status", "currency", "order_total"]
LINE_SCHEMA = pa.schema([
    ("order_id", pa.string()),
    ("line_number", pa.int32()),
    ("product_id", pa.string()),
    ("quantity", pa.int32()),
    ("unit_price", pa.float64()),
    ("discount", pa.float64()),
])
EVENT_COLUMNS = ["event_id", "event_ts", "event_type", "customer_id", "anonymous_id", "session_id",
                 "product_id", "url", "referrer", "user_agent", "ip"]
SHOP = "https://shop.example.com"
_TMP_NAME = ".rfmlake-generate.tmp"
_COUNTRY_CODES = tuple(words.COUNTRIES)
_CURRENCIES = tuple(sorted({spec[0] for spec in words.COUNTRIES.values()}))
# Units of EUR per unit of each currency the shop sells in: the level the generated daily reference
# rates move around (landed as currency_rates, base EUR, the way the ECB publishes them).
NOMINAL_EUR_RATES: dict[str, float] = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "SEK": 0.087, "DKK": 0.134,
                                       "CHF": 1.04, "PLN": 0.23}
RATES_FILE = "eur-reference-rates.csv"
RATE_COLUMNS = ["rate_date", "currency", "rate", "base_currency"]


class GenerationError(RfmlakeError):
    """The sample data cannot be generated as asked (bad parameter, output folder in the way)."""


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    rows_per_entity: dict[str, int]
    files: dict[str, int]
    injected_bad_rows: dict[str, dict[str, int]]
    seconds: float

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_NAME


def generate_landing(
    out_dir: Path,
    *,
    order_lines: int = 20_000,
    seed: int = 7,
    bad_rows: bool = False,
    end_date: date = date(2026, 10, 31),
    years: float = 3.0,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> GenerationSummary:
    """Write landing files for every contract entity under out_dir/<entity>/ and a manifest.

    Files are staged in a hidden folder and moved into place at the end, so an interrupted run never
    leaves a half-written landing folder behind.
    """
    _validate(order_lines, seed, years, end_date)
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    started = time.perf_counter()
    staging = out_dir / _TMP_NAME
    staging.mkdir(parents=True)
    try:
        generator = _Generator(staging, order_lines, seed, bad_rows, end_date, years, progress)
        generator.run()
        manifest = generator.manifest()
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in [*ENTITIES, MANIFEST_NAME, identity.TRUTH_NAME]:
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return GenerationSummary(
        out_dir=out_dir,
        rows_per_entity=manifest["rows_per_entity"],
        files=manifest["files"],
        injected_bad_rows=manifest["injected_bad_rows"],
        seconds=round(time.perf_counter() - started, 3),
    )


def _validate(order_lines: int, seed: int, years: float, end_date: date) -> None:
    if isinstance(order_lines, bool) or not isinstance(order_lines, int):
        raise GenerationError(f"order_lines must be a whole number, got {order_lines!r}")
    if not MIN_ORDER_LINES <= order_lines <= MAX_ORDER_LINES:
        raise GenerationError(
            f"order_lines must be between {MIN_ORDER_LINES:,} and {MAX_ORDER_LINES:,}, got {order_lines:,}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GenerationError(f"seed must be a non-negative whole number, got {seed!r}")
    if not (isinstance(years, int | float) and 0.5 <= years <= 20):
        raise GenerationError(f"years of history must be between 0.5 and 20, got {years!r}")
    if not isinstance(end_date, date) or not date(2000, 1, 1) <= end_date <= date(2100, 12, 31):
        raise GenerationError(f"end_date must be a date between 2000-01-01 and 2100-12-31, got {end_date!r}")


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GenerationError(f"output path {out_dir} exists and is not a folder")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise GenerationError(
            f"output folder {out_dir} is not empty; choose an empty folder or pass overwrite "
            "(--overwrite) to replace data generated there before"
        )
    manifest_path = out_dir / MANIFEST_NAME
    generated: list[str] = []
    if manifest_path.is_file():
        try:
            generated = list(json.loads(manifest_path.read_text())["files"])
        except (ValueError, KeyError, TypeError):
            raise GenerationError(
                f"{manifest_path} is not a generator manifest; remove the folder's content by hand"
            ) from None
    for relative in generated:
        parts = Path(relative).parts
        if len(parts) == 2 and parts[0] in ENTITIES:  # never follow a path out of an entity folder
            (out_dir / relative).unlink(missing_ok=True)
    shutil.rmtree(out_dir / _TMP_NAME, ignore_errors=True)
    foreign = [
        p.relative_to(out_dir).as_posix()
        for name in ENTITIES
        if (out_dir / name).is_dir()
        for p in sorted((out_dir / name).rglob("*"))
        if p.is_file()
    ]
    if foreign:
        raise GenerationError(
            f"refusing to overwrite {out_dir}: entity folders hold files this generator did not write "
            f"(e.g. {foreign[0]}); remove them by hand"
        )
    for name in ENTITIES:
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)
    manifest_path.unlink(missing_ok=True)
    (out_dir / identity.TRUTH_NAME).unlink(missing_ok=True)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class _Generator:
    """One generation run. Plan arrays are built once; writers then stream chunk by chunk."""

    def __init__(self, root: Path, order_lines: int, seed: int, bad_rows: bool, end_date: date,
                 years: float, progress: Progress | None) -> None:
        self.root = root
        self.order_lines = order_lines
        self.seed = seed
        self.bad_rows = bad_rows
        self.end_date = end_date
        self.years = years
        self.progress: Progress = progress or (lambda entity, done, total: None)
        self.counter = FileCounter(root)
        self.book = BadRowBook()
        self.k = per_kind(order_lines)
        self._pending_in_file_duplicates: list[str] = []
        self._contacts_seen: dict[str, np.ndarray] = {}
        self.end_s = _epoch(end_date + timedelta(days=1)) - 1
        self.start_s = self.end_s - int(years * 365.25 * DAY)
        spec = [words.COUNTRIES[c] for c in _COUNTRY_CODES]
        self.country_currency = np.array([_CURRENCIES.index(s[0]) for s in spec])
        self.country_offset = np.array([s[2] * 60 for s in spec])
        self.country_dst = np.array([s[3] for s in spec])

    # ------------------------------------------------------------------ plan
    def run(self) -> None:
        self._plan_rates()
        self._plan_products()
        self._plan_buyers()
        self._plan_orders()
        self._plan_identity()
        self._plan_affinities()
        self._write_rates()
        self._write_products()
        self._write_customers()
        self._write_orders_lines_events()
        self._write_identity_sessions()
        self._write_access_logs()
        self._write_guidance()

    def _plan_rates(self) -> None:
        """Daily reference rates per currency, published on weekdays from a week before the first
        order (so every order has a rate on or before its day) to the last day. Each moves around
        its nominal level as a slow mean-reverting walk (about 0.3% a day). Orders are priced with
        the rate that applies on their UTC day (the latest on or before it), so converting them back
        with the landed rates gives the catalog's EUR prices up to rounding."""
        rng = _rng(self.seed, 5)
        self.rate_first_day = self.start_s // DAY - 7
        days = np.arange(self.rate_first_day, self.end_s // DAY + 1)
        self.rate_days = days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday: Monday to Friday
        foreign = [c for c in _CURRENCIES if c != "EUR"]
        shocks = rng.normal(0.0, 0.003, (len(foreign), len(self.rate_days)))
        deviation = np.zeros_like(shocks)
        for t in range(1, shocks.shape[1]):
            deviation[:, t] = 0.995 * deviation[:, t - 1] + shocks[:, t]
        nominal = np.array([NOMINAL_EUR_RATES[c] for c in foreign])[:, None]
        # Published as units of the currency per 1 EUR with 4 decimals, as the ECB does.
        self.rate_quotes = {c: np.round(1.0 / (nominal[i] * np.exp(deviation[i])), 4) for i, c in enumerate(foreign)}
        # Units of EUR per unit, per currency and calendar day: the latest published rate on or before it.
        # (the days before the first weekday hold no order: clipped only to stay inside the array)
        published = np.maximum(np.searchsorted(self.rate_days, days, side="right") - 1, 0)
        self.rate_by_currency = np.ones((len(_CURRENCIES), len(days)))
        for c, quotes in self.rate_quotes.items():
            self.rate_by_currency[_CURRENCIES.index(c)] = 1.0 / quotes[published]

    def _rates_on(self, currency: np.ndarray, epoch_s: np.ndarray) -> np.ndarray:
        """Units of EUR per unit of `currency` on the UTC day of each timestamp."""
        return self.rate_by_currency[currency, epoch_s // DAY - self.rate_first_day]

    def _plan_products(self) -> None:
        rng = _rng(self.seed, 1)
        n = int(np.clip(self.order_lines // 40, 100, 20_000))
        categories = tuple(words.PRODUCT_NOUNS)
        category = rng.integers(0, len(categories), n)
        nouns = [words.PRODUCT_NOUNS[categories[c]] for c in category]
        noun = np.array([choices[i % len(choices)] for choices, i in zip(nouns, rng.integers(0, 97, n),
                                                                          strict=True)])
        adjective = np.array(words.PRODUCT_ADJECTIVES)[rng.integers(0, len(words.PRODUCT_ADJECTIVES), n)]
        euros = np.floor(np.exp(rng.normal(np.log(22.0), 0.85, n))).astype(np.int64)
        self.product_ids = ids("P", np.arange(1, n + 1), 6)
        self.product_names = cat(adjective, " ", noun)
        self.product_category = np.array(categories)[category]
        self.product_brand = np.array(words.BRANDS)[rng.integers(0, len(words.BRANDS), n)]
        self.product_cents = np.maximum(euros, 1) * 100 + np.where(rng.random(n) < 0.7, 99, 0)
        # A few products sell far more than the rest (popularity ~ 1/rank).
        weights = 1.0 / (rng.permutation(n) + 5.0)
        self.product_cdf = np.cumsum(weights) / weights.sum()

    def _plan_buyers(self) -> None:
        rng = _rng(self.seed, 2)
        mean_lines, header_share, mean_orders = 2.3, 0.08, 2.55
        buyers = max(3, int(self.order_lines / mean_lines / (1 - header_share) / mean_orders))
        one_time = rng.random(buyers) < 0.60
        vip = rng.random(buyers) < 0.06
        repeat = np.where(vip, 1 + rng.geometric(0.07, buyers), 1 + rng.geometric(0.30, buyers))
        counts = np.where(one_time, 1, np.minimum(repeat, 150))
        is_guest = rng.random(buyers) < 0.07
        counts = np.where(is_guest, 1, counts)
        span = self.end_s - self.start_s
        # Newer customers are more common (the shop grows); a slice joined in the last 60 days.
        u = rng.random(buyers)
        acquired = self.start_s + (span * u ** 0.8).astype(np.int64)
        recent = rng.random(buyers) < 0.08
        acquired = np.where(recent, self.end_s - rng.integers(0, 60 * DAY, buyers), acquired)
        repeaters = counts > 1
        acquired = np.where(repeaters, self.start_s + (rng.random(buyers) * (span - 45 * DAY)).astype(np.int64),
                            acquired)
        churned = repeaters & (rng.random(buyers) < 0.35)
        active_until = np.where(churned, acquired + rng.integers(60 * DAY, 540 * DAY, buyers), self.end_s)
        self.buyer_counts = counts
        self.buyer_acquired = acquired
        self.buyer_until = np.minimum(active_until, self.end_s)
        self.buyer_is_guest = is_guest
        self.buyer_country = rng.choice(len(_COUNTRY_CODES), buyers, p=words.COUNTRY_WEIGHTS)
        # CRM: registered buyers plus people who signed up and never ordered.
        registered = np.flatnonzero(~is_guest)
        never_ordered = int(len(registered) * 0.18)
        created = np.concatenate([
            acquired[registered] - rng.integers(0, 20 * DAY, len(registered)),
            self.start_s + (rng.random(never_ordered) * span).astype(np.int64),
        ])
        country = np.concatenate([
            self.buyer_country[registered],
            rng.choice(len(_COUNTRY_CODES), never_ordered, p=words.COUNTRY_WEIGHTS),
        ])
        order = np.argsort(created, kind="stable")
        self.crm_created = created[order]
        self.crm_country = country[order]
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        # Registered buyers are numbered by signup time (C00000001 is the oldest customer).
        self.buyer_number = np.zeros(buyers, dtype=np.int64)
        self.buyer_number[registered] = rank[: len(registered)] + 1
        self.buyer_number[is_guest] = np.arange(1, int(is_guest.sum()) + 1)

    def _plan_orders(self) -> None:
        rng = _rng(self.seed, 3)
        counts = self.buyer_counts
        total = int(counts.sum())
        buyer = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        first = np.ones(total, dtype=bool)
        first[1:] = buyer[1:] != buyer[:-1]
        window = (self.buyer_until - self.buyer_acquired)[buyer]
        ts = self.buyer_acquired[buyer] + (rng.random(total) * window).astype(np.int64)
        ts[first] = self.buyer_acquired[buyer[first]]
        order = np.argsort(ts, kind="stable")
        self.order_buyer = buyer[order]
        self.order_ts = ts[order]
        del buyer, ts, first, window, order
        header_only = np.zeros(total, dtype=bool)
        header_only[rng.choice(total, max(3, round(total * 0.08)), replace=False)] = True
        n_lines = np.where(header_only, 0, 1 + np.minimum(rng.poisson(1.3, total), 14)).astype(np.int16)
        self.order_lines_n = self._fit_line_total(rng, n_lines)
        recent = self.order_ts > self.end_s - 14 * DAY
        u = rng.random(total)
        old_cut = np.cumsum([0.86, 0.005, 0.055])
        new_cut = np.cumsum([0.62, 0.30, 0.05])
        self.order_status = np.where(
            recent, np.searchsorted(new_cut, u, side="right"), np.searchsorted(old_cut, u, side="right")
        ).astype(np.int8)
        home = self.country_currency[self.buyer_country[self.order_buyer]]
        cross_border = rng.random(total) < 0.04
        abroad = np.where(rng.random(total) < 0.5, _CURRENCIES.index("EUR"), _CURRENCIES.index("USD"))
        self.order_currency = np.where(cross_border, abroad, home).astype(np.int8)
        self.order_with_offset = rng.random(total) < 0.45
        # Older orders in the CSV export, newer in the JSON Lines feed; a tiny shop keeps 10 per bad
        # kind in the feed, where the bad order lines find their orders.
        self.split = min(int(total * 0.7), max(0, total - 10 * self.k))

    def _plan_identity(self) -> None:
        # Its own seed stream (50): the draws of every other stream stay as they were.
        self.identity = identity.plan_identity(_rng(self.seed, 50), self.crm_created, self.end_s)
        self.order_moved_to = identity.order_reassignment(
            self.identity, self.order_buyer, self.order_ts, self.buyer_number, self.buyer_is_guest,
            len(self.crm_created))

    def _plan_affinities(self) -> None:
        """Each buyer favours one category and one brand, so a recommender has signal to find: a
        share of their order lines (AFFINITY_SHARES) and of their browsing views come from that
        category or brand, by popularity within it; the rest from the whole catalogue as before.
        Drawn from streams of their own (4, 40, 41), so every other draw stays what it was."""
        rng = _rng(self.seed, 4)
        buyers = len(self.buyer_counts)
        weights = np.diff(self.product_cdf, prepend=0.0)
        self.affinity_pools: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.buyer_affinity: list[np.ndarray] = []
        for labels in (self.product_category, self.product_brand):
            groups, group = np.unique(labels, return_inverse=True)
            order = np.argsort(group, kind="stable")
            sorted_group = group[order]
            totals = np.bincount(group, weights=weights, minlength=len(groups))
            within = np.cumsum(weights[order]) - np.repeat(np.cumsum(totals) - totals, np.bincount(group))
            # key = group + the cumulative share within the group: one searchsorted draws from any group
            keys = sorted_group + within / totals[sorted_group]
            bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=len(groups)))])
            self.affinity_pools.append((order, keys, bounds))
            self.buyer_affinity.append(rng.integers(0, len(groups), buyers))

    def _with_affinity(self, product: np.ndarray, buyer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`product` with a share of the picks replaced by one from the buyer's favourite category
        or brand (`buyer` is -1 for a visitor who never bought: left as drawn)."""
        u = rng.random(len(product))
        draw = rng.random(len(product))
        out = product.copy()
        low = 0.0
        for (order, keys, bounds), favourite, share in zip(self.affinity_pools, self.buyer_affinity,
                                                           AFFINITY_SHARES, strict=True):
            pick = (buyer >= 0) & (u >= low) & (u < low + share)
            low += share
            if not pick.any():
                continue
            group = favourite[buyer[pick]]
            index = np.searchsorted(keys, group + draw[pick], side="right")
            out[pick] = order[np.clip(index, bounds[group], bounds[group + 1] - 1)]
        return out

    def _fit_line_total(self, rng: np.random.Generator, n_lines: np.ndarray) -> np.ndarray:
        """Nudge line counts so they sum to exactly order_lines (the parameter means what it says)."""
        diff = self.order_lines - int(n_lines.sum())
        with_lines = np.flatnonzero(n_lines > 0)
        while diff > 0:
            pick = rng.choice(with_lines, min(diff, len(with_lines)), replace=False)
            n_lines[pick] += 1
            diff -= len(pick)
        while diff < 0:
            removable = np.flatnonzero(n_lines > 1)
            if len(removable) == 0:
                raise GenerationError("cannot fit the requested number of order lines")  # pragma: no cover
            pick = rng.choice(removable, min(-diff, len(removable)), replace=False)
            n_lines[pick] -= 1
            diff += len(pick)
        return n_lines

    # ------------------------------------------------------------ helpers
    def _offsets(self, epoch_s: np.ndarray, country: np.ndarray) -> np.ndarray:
        month = epoch_s.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
        summer = (month >= 3) & (month <= 9) & self.country_dst[country]
        return self.country_offset[country] + np.where(summer, 60, 0)

    def _buyer_ids(self, buyer: np.ndarray) -> np.ndarray:
        number = self.buyer_number[buyer]
        return np.where(self.buyer_is_guest[buyer], ids("G", number, 8), ids("C", number, 8))

    def _placed_under(self, buyer: np.ndarray, moved_to: np.ndarray) -> np.ndarray:
        """The customer id an order (or its purchase events) carries: the buyer's, or the duplicate
        record's the generator planted for that person (rfmlake.generate.identity)."""
        return np.where(moved_to > 0, ids("C", np.maximum(moved_to, 1), 8), self._buyer_ids(buyer))

    def _visitor_ids(self, visitor: np.ndarray) -> np.ndarray:
        # x -> x * odd mod 10^10 is a bijection, so distinct visitors get distinct cookie ids.
        return ids("V", (visitor.astype(np.int64) * 2_654_435_761) % 10**10, 10)

    def _path(self, entity: str, name: str) -> Path:
        return self.root / entity / name

    # ---------------------------------------------------------------- rates
    def _write_rates(self) -> None:
        dates = self.rate_days.astype("datetime64[D]").astype(str)
        frame = pd.concat([pd.DataFrame({"rate_date": dates, "currency": c, "rate": [f"{q:.4f}" for q in quotes],
                                         "base_currency": "EUR"})
                           for c, quotes in self.rate_quotes.items()]).sort_values(["rate_date", "currency"],
                                                                                    kind="stable")
        path = self._path("currency_rates", RATES_FILE)
        append_csv(path, frame[RATE_COLUMNS], self.counter)
        if self.bad_rows:
            self._bad_rates(path, frame)
        self.progress("currency_rates", len(frame), len(frame))

    def _bad_rates(self, path: Path, clean: pd.DataFrame) -> None:
        relative = f"currency_rates/{RATES_FILE}"
        rows: list[dict[str, str]] = []
        donors = clean.head(self.k).to_dict("records")

        def bad(reason: QuarantineReason, column: str, values: list[str]) -> None:
            for i in range(self.k):
                row = {**donors[i % len(donors)], column: values[i % len(values)]}
                rows.append(row)
                self.book.add("currency_rates", reason, relative, f"{row['rate_date']} {column}={row[column]!r}")

        bad(QuarantineReason.MISSING_KEY, "currency", [""])
        bad(QuarantineReason.UNPARSABLE_DATE, "rate_date", list(UNPARSABLE_DATES))
        bad(QuarantineReason.BAD_TYPE, "rate", ["n/a"])
        bad(QuarantineReason.NEGATIVE_AMOUNT, "rate", ["-1.0850", "0", "-0.0001"])
        bad(QuarantineReason.UNKNOWN_CURRENCY, "currency", [UNKNOWN_CURRENCY])
        for donor in donors:
            rows.append(dict(donor))
            self.book.add("currency_rates", QuarantineReason.DUPLICATE, relative,
                          f"exact copy of {donor['currency']} on {donor['rate_date']}")
        append_csv(path, pd.DataFrame(rows)[RATE_COLUMNS], self.counter, header=False)

    # -------------------------------------------------------------- products
    def _write_products(self) -> None:
        path = self._path("products", "products.csv")
        # Header in mixed case on purpose: the contract says column names are case-insensitive.
        frame = pd.DataFrame({
            "Product_ID": self.product_ids,
            "NAME": self.product_names,
            "Category": self.product_category,
            "brand": self.product_brand,
            "Price": money(self.product_cents),
            "CURRENCY": "EUR",
        })
        append_csv(path, frame, self.counter)
        self.progress("products", len(frame), len(frame))

    # ------------------------------------------------------------- customers
    def _customer_frame(self, rng: np.random.Generator, numbers: np.ndarray, created: np.ndarray,
                        country: np.ndarray) -> pd.DataFrame:
        n = len(numbers)
        first = np.array(words.FIRST_NAMES)[rng.integers(0, len(words.FIRST_NAMES), n)]
        last = np.array(words.LAST_NAMES)[rng.integers(0, len(words.LAST_NAMES), n)]
        suffix = np.where(rng.random(n) < 0.5, rng.integers(1, 999, n).astype(str), "")
        domain = np.array(words.EMAIL_DOMAINS)[rng.integers(0, len(words.EMAIL_DOMAINS), n)]
        local = np.strings.replace(np.strings.lower(cat(first, ".", last, suffix)), " ", "")
        email = np.where(rng.random(n) < 0.06, "", cat(local, "@", domain))
        prefix = np.array([words.COUNTRIES[c][1] for c in _COUNTRY_CODES])[country]
        phone = np.where(rng.random(n) < 0.25, "", cat(prefix, " ", padded(rng.integers(10**8, 10**9, n), 9)))
        city_lists = [words.COUNTRIES[c][4] for c in _COUNTRY_CODES]
        pick = rng.integers(0, 1000, n)
        city = np.array([city_lists[c][p % len(city_lists[c])] for c, p in zip(country, pick, strict=True)])
        postal = padded(rng.integers(1000, 99999, n), 5)
        updated = created + (rng.random(n) * (self.end_s - created)).astype(np.int64)
        with_offset = rng.random(n) < 0.45
        opt_in = np.array(["true", "false", ""])[rng.choice(3, n, p=[0.45, 0.40, 0.15])]
        tier = np.array(["", "", "", "silver", "gold"])[rng.integers(0, 5, n)]
        return pd.DataFrame({
            "customer_id": ids("C", numbers, 8),
            "email": email,
            "phone": phone,
            "first_name": first,
            "last_name": last,
            "country": np.array(_COUNTRY_CODES)[country],
            "city": city,
            "postal_code": postal,
            "created_at": iso_timestamps(created, self._offsets(created, country), with_offset),
            "updated_at": iso_timestamps(updated, self._offsets(updated, country), with_offset),
            "marketing_opt_in": opt_in,
            "loyalty_tier": tier,  # not in the contract: kept in bronze, ignored after
        })

    def _write_customers(self) -> None:
        path = self._path("customers", "customers.csv")
        total = len(self.crm_created)
        donors: pd.DataFrame | None = None
        for chunk, start in enumerate(range(0, total, CUSTOMER_CHUNK)):
            stop = min(start + CUSTOMER_CHUNK, total)
            frame = self._customer_frame(
                _rng(self.seed, 10, chunk), np.arange(start + 1, stop + 1),
                self.crm_created[start:stop], self.crm_country[start:stop],
            )
            frame = identity.unique_contacts(frame, self._contacts_seen)
            numbers = np.arange(start + 1, stop + 1)
            planted = np.isin(numbers, self.identity.originals)
            self.identity.original_rows += [
                {**row, "_number": int(number)}
                for row, number in zip(frame[planted].to_dict("records"), numbers[planted], strict=True)]
            if donors is None:
                donors = frame.head(self.k).copy()
            append_csv(path, frame, self.counter)
            self.progress("customers", stop, total)
        if self.bad_rows and donors is not None:
            self._bad_customers(path, donors)
        if len(self.identity.originals):
            def iso(epoch_s: int) -> str:  # UTC without an offset, as the contract allows
                return str(iso_timestamps(np.array([epoch_s]), np.array([0]), np.array([False]))[0])

            second = identity.duplicate_records(_rng(self.seed, 51), self.identity, iso)
            second = identity.keep_apart_from_others(second, self.identity, self._contacts_seen)
            append_csv(self._path("customers", identity.SECOND_CRM_FILE), second, self.counter)

    def _bad_customers(self, path: Path, donors: pd.DataFrame) -> None:
        k, rel = self.k, "customers/customers.csv"
        fresh = iter(range(90_000_001, 90_001_000))
        rows = []
        for i in range(k):
            row = donors.iloc[i % len(donors)].copy()
            row["customer_id"], row["email"] = "", f"no.id.{i}@example.com"
            rows.append(row)
            self.book.add("customers", QuarantineReason.MISSING_KEY, rel, f"empty customer_id, email {row['email']}")
        for i in range(k):
            row = donors.iloc[i % len(donors)].copy()
            row["customer_id"] = f"C{next(fresh):08d}"
            column = "created_at" if i % 2 == 0 else "updated_at"
            row[column] = UNPARSABLE_DATES[i % len(UNPARSABLE_DATES)]
            rows.append(row)
            self.book.add("customers", QuarantineReason.UNPARSABLE_DATE, rel,
                          f"{row['customer_id']} {column}={row[column]!r}")
        for i in range(k):
            rows.append(donors.iloc[i % len(donors)].copy())
            self.book.add("customers", QuarantineReason.DUPLICATE, rel,
                          f"exact copy of {donors.iloc[i % len(donors)]['customer_id']}")
        append_csv(path, pd.DataFrame(rows), self.counter, header=False)
        broken_id = f"C{next(fresh):08d}"
        # Last line of the file on purpose: an unclosed quote must not swallow the lines after it.
        append_raw_lines(path, [f'"{broken_id},broken.quote@example.com,,Ann,Quote,SE,Lund,22100'], self.counter)
        self.book.add("customers", QuarantineReason.MALFORMED_RECORD, rel, f"unclosed quote, {broken_id}")

    # --------------------------------------------- orders, lines and events
    def _write_orders_lines_events(self) -> None:
        total = len(self.order_ts)
        csv_path = self._path("orders", "orders-0001-history.csv")
        json_path = self._path("orders", "orders-0002-recent.jsonl")
        rows_per_file = min(1_000_000, math.ceil(self.order_lines / 2))
        lines = RollingParquetWriter(self.root / "order_items", "order_items", LINE_SCHEMA, rows_per_file,
                                     self.counter)
        state = _StreamState()
        for chunk, start in enumerate(range(0, total, ORDER_CHUNK)):
            stop = min(start + ORDER_CHUNK, total)
            rng = _rng(self.seed, 20, chunk)
            orders, line_table, first_products = self._order_chunk(rng, start, stop)
            clean_lines = line_table.num_rows
            if chunk == 0 and self.bad_rows:
                line_table = self._inject_line_duplicates_in_file(line_table, state)
            lines.write(line_table)
            self.progress("order_items", state.add_lines(clean_lines), self.order_lines)
            csv_part = orders.iloc[: max(0, self.split - start)]
            json_part = orders.iloc[len(csv_part):]
            if len(csv_part):
                append_csv(csv_path, csv_part, self.counter)
                state.collect_csv_donors(csv_part, self.order_lines_n[start:start + len(csv_part)], self.k)
            if len(json_part):
                json_frame = json_part.assign(
                    order_total=json_part["order_total"].astype(float),
                    sales_channel=np.array(["web", "app", "marketplace"])[rng.integers(0, 3, len(json_part))],
                )
                append_jsonl(json_path, json_frame, self.counter)
                state.collect_line_orders(json_part, self.order_lines_n[stop - len(json_part):stop],
                                          line_table, 4 * self.k)
            self._write_events(rng, start, stop, first_products, state)
            self.progress("orders", stop, total)
            self.progress("events", stop, total)
        if self.bad_rows:
            self._bad_orders(csv_path, json_path, state)
            self._bad_lines(lines, state)
            self._bad_events(state)
        lines.close()

    def _order_chunk(self, rng: np.random.Generator, start: int, stop: int
                     ) -> tuple[pd.DataFrame, pa.Table, np.ndarray]:
        n = stop - start
        buyer = self.order_buyer[start:stop]
        ts = self.order_ts[start:stop]
        currency = self.order_currency[start:stop]
        n_lines = self.order_lines_n[start:stop].astype(np.int64)
        order_ids = ids("O", np.arange(start + 1, stop + 1), 9)
        line_order = np.repeat(np.arange(n), n_lines)
        m = len(line_order)
        starts = np.cumsum(n_lines) - n_lines
        line_number = np.arange(m) - np.repeat(starts, n_lines) + 1
        product = np.searchsorted(self.product_cdf, rng.random(m), side="right").clip(0, len(self.product_ids) - 1)
        product = self._with_affinity(product, buyer[line_order], _rng(self.seed, 40, start // ORDER_CHUNK))
        quantity = 1 + np.minimum(rng.poisson(0.35, m), 8)
        rate = self._rates_on(currency[line_order], ts[line_order])
        unit_cents = np.maximum(np.rint(self.product_cents[product] / rate), 1).astype(np.int64)
        discounted = rng.random(m) < 0.15
        percent = np.array([5, 10, 15, 20, 25, 30])[rng.integers(0, 6, m)]
        discount_cents = np.where(discounted, np.rint(quantity * unit_cents * percent / 100), 0).astype(np.int64)
        net = quantity * unit_cents - discount_cents
        line_sum = np.rint(np.bincount(line_order, weights=net, minlength=n)).astype(np.int64)
        # Header-only orders: a lognormal basket value (median ~45 EUR) in the order's currency.
        basket_eur = np.exp(rng.normal(np.log(45.0), 1.0, n)) * 100
        header_cents = np.maximum(np.rint(basket_eur / self._rates_on(currency, ts)), 100).astype(np.int64)
        total_cents = np.where(n_lines > 0, line_sum, header_cents)
        country = self.buyer_country[buyer]
        orders = pd.DataFrame({
            "order_id": order_ids,
            "customer_id": self._placed_under(buyer, self.order_moved_to[start:stop]),
            "order_ts": iso_timestamps(ts, self._offsets(ts, country), self.order_with_offset[start:stop]),
            "status": np.array(ORDER_STATUSES)[self.order_status[start:stop]],
            "currency": np.array(_CURRENCIES)[currency],
            "order_total": money(total_cents),
        })
        line_table = pa.table({
            "order_id": order_ids[line_order],
            "line_number": line_number.astype(np.int32),
            "product_id": self.product_ids[product],
            "quantity": quantity.astype(np.int32),
            "unit_price": unit_cents / 100,
            "discount": pa.array(discount_cents / 100, mask=~discounted),
        })
        first_products = np.where(
            n_lines > 0,
            product[np.minimum(starts, max(m - 1, 0))] if m else 0,
            rng.integers(0, len(self.product_ids), n),
        )
        return orders, line_table, first_products

    def _write_events(self, rng: np.random.Generator, start: int, stop: int, first_products: np.ndarray,
                      state: _StreamState) -> None:
        n = stop - start
        buyer = self.order_buyer[start:stop]
        ts_ms = self.order_ts[start:stop] * 1000
        # Purchase sessions for about a third of orders: view -> product -> cart -> purchase.
        with_session = np.flatnonzero(rng.random(n) < 0.35)
        s = len(with_session)
        steps = np.array([-1_200_000, -900_000, -300_000, 0])
        kinds = np.array(["page_view", "product_view", "add_to_cart", "purchase"])
        p_ts = (ts_ms[with_session][:, None] + steps[None, :]
                - rng.integers(0, 120_000, (s, 1)) * np.array([1, 1, 1, 0])).ravel()
        p_session = np.repeat(np.arange(s), 4)
        p_kind = np.tile(np.arange(4), s)
        p_buyer = np.repeat(buyer[with_session], 4)
        p_product = np.repeat(first_products[with_session], 4)
        p_order = np.repeat(with_session + start + 1, 4)
        # Browsing sessions without a purchase, for buyers and for visitors who never bought.
        b = int(n * 0.4)
        visitors = len(self.buyer_counts)
        v = rng.integers(0, int(visitors * 1.6), b)
        lo, hi = int(ts_ms.min()), int(ts_ms.max()) + 1
        b_start = rng.integers(lo, hi, b)
        b_ts = np.stack([b_start, b_start + rng.integers(5_000, 300_000, b)], axis=1).ravel()
        b_session = np.repeat(np.arange(s, s + b), 2)
        b_kind = np.tile(np.array([0, 1]), b)
        b_visitor = np.repeat(v, 2)
        b_product = np.searchsorted(self.product_cdf, rng.random(b), side="right").clip(0, len(self.product_ids) - 1)
        b_product = np.repeat(self._with_affinity(b_product, np.where(v < visitors, v, -1),
                                                  _rng(self.seed, 41, start // ORDER_CHUNK)), 2)
        event_ts = np.concatenate([p_ts, b_ts])
        session = np.concatenate([p_session, b_session])
        kind = np.concatenate([p_kind, b_kind])
        visitor = np.concatenate([p_buyer, b_visitor])
        product = np.concatenate([p_product, b_product])
        order_no = np.concatenate([p_order, np.zeros(2 * b, dtype=np.int64)])
        sort = np.argsort(event_ts, kind="stable")
        event_ts, session, kind, visitor, product, order_no = (
            a[sort] for a in (event_ts, session, kind, visitor, product, order_no)
        )
        e = len(event_ts)
        is_buyer = visitor < visitors
        buyer_index = np.where(is_buyer, visitor, 0)
        session_logged_in = rng.random(s + b) < np.where(np.arange(s + b) < s, 0.85, 0.3)
        known = is_buyer & ~self.buyer_is_guest[buyer_index] & session_logged_in[session]
        # Purchases placed under a planted duplicate record come from that record's own device.
        moved_to = np.where(order_no > 0, self.order_moved_to[np.maximum(order_no, 1) - 1], 0)
        customer = np.where(known, self._placed_under(buyer_index, moved_to), None)
        # Object arrays of shared str objects: fixed-width unicode copies of long user agents would
        # cost ~0.5 KB per event.
        session_ua = np.array(words.USER_AGENTS, dtype=object)[rng.integers(0, len(words.USER_AGENTS), s + b)]
        session_ip = ipv4(rng, s + b)
        referrer = np.array(words.REFERRERS, dtype=object)[rng.integers(0, len(words.REFERRERS), s + b)][session]
        first_of_session = np.zeros(e, dtype=bool)
        first_of_session[np.unique(session, return_index=True)[1]] = True
        url = np.array([f"{SHOP}/", "", f"{SHOP}/cart", ""], dtype=object)[kind]
        product_ids = self.product_ids[product]
        url = np.where(kind == 1, cat(SHOP, "/p/", product_ids), url)
        url = np.where(kind == 3, cat(SHOP, "/checkout/complete?order=", ids("O", np.maximum(order_no, 1), 9)), url)
        frame = pd.DataFrame({
            "event_id": ids("E", np.arange(state.events + 1, state.events + e + 1), 11),
            "event_ts": iso_utc_z(event_ts),
            "event_type": kinds[kind],
            "customer_id": customer,
            "anonymous_id": np.where(moved_to > 0, identity.device_ids(self._duplicate_index(moved_to)),
                                     self._visitor_ids(visitor)),
            "session_id": ids("S", state.sessions + 1 + session, 10),
            "product_id": np.where(kind == 0, None, product_ids),
            "url": url,
            "referrer": np.where((referrer == "") | ~first_of_session, None, referrer).astype(object),
            "user_agent": session_ua[session],
            "ip": session_ip[session],
        })
        state.events += e
        state.sessions += s + b
        quarter = self._quarter_keys(event_ts)
        for key in np.unique(quarter):
            part = frame[quarter == key]
            path = self._path("events", f"events-{key // 10}-q{key % 10}.jsonl")
            append_jsonl(path, part, self.counter)
            state.note_event_file(path, part, self.k)

    def _duplicate_index(self, moved_to: np.ndarray) -> np.ndarray:
        """Device number of a duplicate record (numbered after the pre-signup devices, as in
        identity.identity_events)."""
        first = int(self.identity.duplicates[0]) if len(self.identity.duplicates) else 0
        return len(self.identity.pre_signup) + 1 + np.maximum(moved_to - first, 0)

    def _write_identity_sessions(self) -> None:
        frame, truth = identity.identity_events(
            _rng(self.seed, 52), self.identity, self.crm_created, self.start_s, self.end_s, self.product_ids, SHOP,
            words.USER_AGENTS)
        if len(frame):
            append_jsonl(self._path("events", identity.IDENTITY_EVENTS_FILE), frame[EVENT_COLUMNS], self.counter)
        identity.write_truth(self.root / identity.TRUTH_NAME, self.identity, truth)

    @staticmethod
    def _quarter_keys(epoch_ms: np.ndarray) -> np.ndarray:
        months = epoch_ms.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        return (1970 + months // 12) * 10 + (months % 12) // 3 + 1

    # ----------------------------------------------------- bad order rows
    def _bad_orders(self, csv_path: Path, json_path: Path, state: _StreamState) -> None:
        k = self.k
        csv_rel, json_rel = "orders/orders-0001-history.csv", "orders/orders-0002-recent.jsonl"
        template = state.csv_line_donors.iloc[0]
        fresh = iter(range(900_000_001, 900_100_000))
        rows: list[pd.Series] = []

        def bad(reason: QuarantineReason, column: str, values: list[str]) -> None:
            for i in range(k):
                row = template.copy()
                row["order_id"] = f"O{next(fresh):09d}"
                row[column] = values[i % len(values)]
                rows.append(row)
                shown = row["order_id"] if column != "order_id" else f"customer {row['customer_id']}"
                self.book.add("orders", reason, csv_rel, f"{shown} {column}={row[column]!r}")

        bad(QuarantineReason.MISSING_KEY, "order_id", [""])
        bad(QuarantineReason.MISSING_KEY, "customer_id", [""])
        bad(QuarantineReason.BAD_TYPE, "order_total", [BAD_ORDER_TOTAL])
        bad(QuarantineReason.UNPARSABLE_DATE, "order_ts", list(UNPARSABLE_DATES))
        bad(QuarantineReason.NEGATIVE_AMOUNT, "order_total", ["-19.90", "-0.01", "-250.00"])
        bad(QuarantineReason.UNKNOWN_CURRENCY, "currency", [UNKNOWN_CURRENCY])
        bad(QuarantineReason.UNKNOWN_STATUS, "status", [UNKNOWN_STATUS])
        bad(QuarantineReason.BAD_KEY, "order_id", list(BAD_KEYS))
        bad(QuarantineReason.IMPLAUSIBLE_DATE, "order_ts", list(IMPLAUSIBLE_DATES))
        # Rows with an empty order_id must still differ from each other, or they would also be duplicates.
        for i, row in enumerate(r for r in rows if r["order_id"] == ""):
            row["order_total"] = money(np.array([1000 + i]))[0]
        for i in range(k):
            donor = state.csv_line_donors.iloc[i % len(state.csv_line_donors)]
            rows.append(donor.copy())
            self.book.add("orders", QuarantineReason.DUPLICATE, csv_rel, f"exact copy of {donor['order_id']}")
        append_csv(csv_path, pd.DataFrame(rows)[ORDER_COLUMNS], self.counter, header=False)
        conflicting = state.csv_header_only_donors.head(k).copy()
        conflicting["order_total"] = conflicting["order_total"].astype(float) + 10.0
        conflicting["sales_channel"] = "web"
        append_jsonl(json_path, conflicting, self.counter)
        for order_id in conflicting["order_id"]:
            self.book.add("orders", QuarantineReason.CONFLICTING_DUPLICATE, json_rel,
                          f"{order_id} re-sent with another order_total; the older CSV row loses")
        broken = [
            f'{{"order_id": "O{next(fresh):09d}", "customer_id": "{template["customer_id"]}", "order_ts": ',
            f"order_id=O{next(fresh):09d};status=completed;total=12.00",
            "[1, 2, 3",
        ]
        append_raw_lines(json_path, broken[:k], self.counter)
        for line in broken[:k]:
            self.book.add("orders", QuarantineReason.MALFORMED_RECORD, json_rel, f"not JSON: {line[:40]}")

    # ------------------------------------------------------ bad order lines
    def _inject_line_duplicates_in_file(self, table: pa.Table, state: _StreamState) -> pa.Table:
        """Exact copies right after their originals, in the first file (rows_per_file >= 500)."""
        k = self.k
        state.line_donors = table.slice(k, k)  # other lines than the in-file copies, for cross-file copies
        order = list(range(k)) + list(range(k)) + list(range(k, table.num_rows))
        self._pending_in_file_duplicates = [table.column("order_id")[i].as_py() for i in range(k)]
        return table.take(pa.array(sorted(order[: 2 * k]) + order[2 * k:]))

    def _bad_lines(self, writer: RollingParquetWriter, state: _StreamState) -> None:
        k = self.k
        first_file = "order_items/order_items-00001.parquet"
        for order_id in self._pending_in_file_duplicates:
            self.book.add("order_items", QuarantineReason.DUPLICATE, first_file, f"exact copy of a line of {order_id}")
        targets = state.line_order_donors
        if len(targets) < 4 * k:
            raise GenerationError("too few orders to place bad order lines; raise order_lines")  # pragma: no cover
        fresh_order = iter(range(950_000_001, 950_100_000))
        records: list[dict[str, object]] = []
        reasons: list[tuple[QuarantineReason, str]] = []

        def line(target: int, **changes: object) -> dict[str, object]:
            order_id, n_lines, product_id, unit_price = targets[target]
            row: dict[str, object] = {"order_id": order_id, "line_number": n_lines + 1, "product_id": product_id,
                                      "quantity": 1, "unit_price": unit_price, "discount": None}
            row.update(changes)
            return row

        for i in range(k):
            records.append(line(i, order_id=None))
            reasons.append((QuarantineReason.MISSING_KEY, "null order_id"))
            records.append(line(k + i, quantity=-(i + 1)))
            reasons.append((QuarantineReason.NEGATIVE_QUANTITY, f"{targets[k + i][0]} quantity={-(i + 1)}"))
            if i % 2 == 0:
                records.append(line(2 * k + i, unit_price=-4.99))
                reasons.append((QuarantineReason.NEGATIVE_AMOUNT, f"{targets[2 * k + i][0]} unit_price=-4.99"))
            else:
                records.append(line(2 * k + i, discount=-1.0))
                reasons.append((QuarantineReason.NEGATIVE_AMOUNT, f"{targets[2 * k + i][0]} discount=-1.0"))
            unknown = f"O{next(fresh_order):09d}"
            records.append(line(i, order_id=unknown, line_number=1))
            reasons.append((QuarantineReason.UNKNOWN_ORDER, f"{unknown} is not an order"))
            discount = round(float(targets[i][3]) + 1.0, 2)
            records.append(line(i, discount=discount))
            reasons.append((QuarantineReason.DISCOUNT_EXCEEDS_LINE, f"{targets[i][0]} discount={discount}"))
        table = pa.Table.from_pylist(records, schema=LINE_SCHEMA)
        writer.write(pa.concat_tables([table, state.line_donors.cast(LINE_SCHEMA)]))
        last_file = writer.current_path.relative_to(self.root).as_posix()  # type: ignore[union-attr]
        for reason, detail in reasons:
            self.book.add("order_items", reason, last_file, detail)
        for order_id in state.line_donors.column("order_id").to_pylist():
            self.book.add("order_items", QuarantineReason.DUPLICATE, last_file,
                          f"exact copy of a line of {order_id} from {first_file}")
        # Values Parquet cannot hold in typed columns arrive as a CSV correction file.
        path = self._path("order_items", "order_items-manual-corrections.csv")
        rel = "order_items/order_items-manual-corrections.csv"
        rows = []
        for i in range(k):
            order_id, n_lines, product_id, unit_price = targets[3 * k + i]
            rows.append({"order_id": order_id, "line_number": n_lines + 1, "product_id": product_id,
                         "quantity": BAD_QUANTITY, "unit_price": f"{unit_price:.2f}", "discount": ""})
            self.book.add("order_items", QuarantineReason.BAD_TYPE, rel, f"{order_id} quantity={BAD_QUANTITY!r}")
            rows.append({"order_id": order_id, "line_number": n_lines + 2, "product_id": product_id,
                         "quantity": "1", "unit_price": BAD_UNIT_PRICE, "discount": ""})
            self.book.add("order_items", QuarantineReason.BAD_TYPE, rel, f"{order_id} unit_price={BAD_UNIT_PRICE!r}")
        # Upper-case header on purpose (names are case-insensitive in the contract).
        frame = pd.DataFrame(rows).rename(columns=str.upper)
        append_csv(path, frame, self.counter)

    # ----------------------------------------------------------- bad events
    def _bad_events(self, state: _StreamState) -> None:
        k = self.k
        first_path, first_rows = state.first_event_file
        last_path, last_rows = state.last_event_file
        last_rel = last_path.relative_to(self.root).as_posix()
        template = last_rows.iloc[-1]
        rows = []
        for i in range(k):
            row = template.copy()
            row["event_id"], row["event_type"] = f"E9{i:010d}", ""
            rows.append(row)
            self.book.add("events", QuarantineReason.MISSING_KEY, last_rel, f"{row['event_id']} empty event_type")
        for i in range(k):
            row = template.copy()
            row["event_id"], row["event_ts"] = f"E9{k + i:010d}", UNPARSABLE_DATES[i % len(UNPARSABLE_DATES)]
            rows.append(row)
            self.book.add("events", QuarantineReason.UNPARSABLE_DATE, last_rel,
                          f"{row['event_id']} event_ts={row['event_ts']!r}")
        append_jsonl(last_path, pd.DataFrame(rows), self.counter)
        same_file = last_rows.head(k)
        append_jsonl(last_path, same_file, self.counter)
        for event_id in same_file["event_id"]:
            self.book.add("events", QuarantineReason.DUPLICATE, last_rel, f"exact copy of {event_id} (same file)")
        if first_path != last_path:
            cross = first_rows.head(k)
            append_jsonl(last_path, cross, self.counter)
            first_rel = first_path.relative_to(self.root).as_posix()
            for event_id in cross["event_id"]:
                self.book.add("events", QuarantineReason.DUPLICATE, last_rel,
                              f"exact copy of {event_id} from {first_rel}")
        broken = ['{"event_id": "E99", "event_type": "page_view", "event_ts": "2026-', "<html>502 Bad Gateway</html>",
                  "event_id=E98 event_type=page_view"]
        append_raw_lines(last_path, broken[:k], self.counter)
        for text in broken[:k]:
            self.book.add("events", QuarantineReason.MALFORMED_RECORD, last_rel, f"not JSON: {text[:40]}")

    # ---------------------------------------------------------- access logs
    def _write_access_logs(self) -> None:
        days = 7
        servers = ("web-1", "web-2")
        total = int(np.clip(self.order_lines // 20, 200, 400_000))
        per_file = total // (days * len(servers))
        done = 0
        files = [(server, self.end_date - timedelta(days=days - 1 - d)) for d in range(days) for server in servers]
        for index, (server, day) in enumerate(files):
            rng = _rng(self.seed, 30, index)
            n = per_file + (total - per_file * len(files) if index == 0 else 0)
            lines = self._log_lines(rng, n, _epoch(day))
            path = self._path("access_logs", f"{server}-{day.isoformat()}.log")
            if self.bad_rows and index == 0:
                bad = [UNPARSABLE_LOG_LINES[i % len(UNPARSABLE_LOG_LINES)] for i in range(self.k)]
                positions = np.sort(rng.choice(n, len(bad), replace=False))
                for offset, (position, text) in enumerate(zip(positions, bad, strict=True)):
                    lines.insert(int(position) + offset, text)
                    line_no = int(position) + offset + 1
                    self.book.add("access_logs", QuarantineReason.UNPARSABLE_LINE,
                                  path.relative_to(self.root).as_posix(), f"line {line_no}: {text[:40]}")
            append_raw_lines(path, lines, self.counter)
            done += n
            self.progress("access_logs", done, total)

    def _log_lines(self, rng: np.random.Generator, n: int, day_start: int) -> list[str]:
        ts = np.sort(day_start + rng.integers(0, DAY, n))
        product_pages = cat("/p/", self.product_ids[rng.integers(0, len(self.product_ids), n)])
        path = np.where(rng.random(n) < 0.5, product_pages,
                        np.array(words.LOG_PATHS)[rng.integers(0, len(words.LOG_PATHS), n)])
        method = np.where(rng.random(n) < 0.9, "GET", "POST")
        protocol = np.where(rng.random(n) < 0.7, "HTTP/1.1", "HTTP/2.0")
        status = np.array([200, 304, 301, 404, 500])[rng.choice(5, n, p=[0.85, 0.06, 0.02, 0.05, 0.02])]
        size = np.where(status == 304, "-", np.exp(rng.normal(8.5, 1.2, n)).astype(np.int64).astype(str))
        users = self.buyer_number[rng.integers(0, len(self.buyer_number), n)]
        user = np.where(rng.random(n) < 0.03, ids("C", np.maximum(users, 1), 8), "-")
        referrer = np.array([r or "-" for r in words.REFERRERS])[rng.integers(0, len(words.REFERRERS), n)]
        agent = np.array(words.USER_AGENTS)[rng.integers(0, len(words.USER_AGENTS), n)]
        text = cat(ipv4(rng, n), " - ", user, " [", clf_timestamps(ts), '] "', method, " ", path, " ", protocol,
                   '" ', status.astype(str), " ", size, ' "', referrer, '" "', agent, '"')
        return text.tolist()

    # ---------------------------------------------------- AWS RFM guidance
    def _write_guidance(self) -> None:
        rng = _rng(self.seed, 40)
        n = int(np.clip(self.order_lines // 50, 50, 2_000))
        people = int(max(10, n // 6))
        first = rng.integers(0, len(words.FIRST_NAMES), people)
        last = rng.integers(0, len(words.LAST_NAMES), people)
        place = rng.integers(0, len(words.GUIDANCE_PLACES), people)
        channel = np.where(rng.random(people) < 0.6, "EMAIL", "SMS")
        phone = rng.integers(2_000_000_000, 9_999_999_999, people)
        span = self.end_s - self.start_s
        rows = []
        for _ in range(n):
            person = int(rng.integers(0, people))
            product = int(rng.integers(0, len(self.product_ids)))
            event = str(rng.choice(["VIEWED", "PROCESSED", "PURCHASED"], p=[0.55, 0.15, 0.30]))
            city, state, country = words.GUIDANCE_PLACES[place[person]]
            offset = timedelta(minutes=words.GUIDANCE_OFFSETS[place[person]])
            moment = datetime.fromtimestamp(self.start_s + int(rng.integers(0, span)), tz=UTC)
            first_name, last_name = words.FIRST_NAMES[first[person]], words.LAST_NAMES[last[person]]
            # Numbered: two people of this source never share an address, nor with a CRM customer.
            username = f"{first_name}.{last_name}.g{person + 1}".lower().replace(" ", "")
            rows.append({
                "EventName": event,
                "ProductCode": str(self.product_ids[product]),
                "ProductName": str(self.product_names[product]),
                "ProductDescription": f"{self.product_names[product]} by {self.product_brand[product]}",
                "UnitPrice": f"{self.product_cents[product] / 100:.2f}",
                "Quantity": str(int(rng.integers(1, 4))),
                "CustomerID": str(100_001 + person),
                "Username": username,
                "ChannelType": str(channel[person]),
                "Address": (f"{username}@example.com" if channel[person] == "EMAIL"
                            else f"+1{int(phone[person]):010d}"),
                "City": city,
                "State": state,
                "Country": country,
                "Date": format_datetime(moment.astimezone(timezone(offset))),
            })
        append_csv(self._path("aws_rfm_guidance", "rfm-guidance-export.csv"), pd.DataFrame(rows), self.counter)
        self.progress("aws_rfm_guidance", n, n)

    # ------------------------------------------------------------- manifest
    def manifest(self) -> dict[str, Any]:
        files = dict(sorted(self.counter.rows.items()))
        rows_per_entity = {name: 0 for name in ENTITIES}
        for path, rows in files.items():
            rows_per_entity[path.split("/", 1)[0]] += rows
        return {
            "generator": "rfmlake.generate",
            "manifest_version": 1,
            "parameters": {
                "order_lines": self.order_lines,
                "seed": self.seed,
                "bad_rows": self.bad_rows,
                "end_date": self.end_date.isoformat(),
                "years": self.years,
            },
            "rows_per_entity": rows_per_entity,
            "files": files,
            "injected_bad_rows": self.book.counts(),
            "injected_bad_row_details": self.book.details(),
            "notes": {
                "rows": "data rows (CSV header lines excluded); log lines for access_logs",
                "injected_bad_rows": "rows expected in quarantine per entity and reason; for a duplicate "
                "pair that is one row",
                "clean_order_lines": self.order_lines,
            },
        }


class _StreamState:
    """What the streaming pass remembers for later: counters and a few donor rows for bad-row copies."""

    def __init__(self) -> None:
        self.lines = 0
        self.events = 0
        self.sessions = 0
        self.csv_line_donors = pd.DataFrame()
        self.csv_header_only_donors = pd.DataFrame()
        self.line_order_donors: list[tuple[str, int, str, float]] = []
        self.line_donors: pa.Table | None = None
        self.first_event_file: tuple[Path, pd.DataFrame] | None = None
        self.last_event_file: tuple[Path, pd.DataFrame] | None = None
        self._event_tails: dict[Path, pd.DataFrame] = {}

    def add_lines(self, n: int) -> int:
        self.lines += n
        return self.lines

    def collect_csv_donors(self, part: pd.DataFrame, n_lines: np.ndarray, k: int) -> None:
        if len(self.csv_line_donors) < k:
            self.csv_line_donors = pd.concat([self.csv_line_donors, part[n_lines > 0].head(k)]).head(k)
        if len(self.csv_header_only_donors) < k:
            self.csv_header_only_donors = pd.concat(
                [self.csv_header_only_donors, part[n_lines == 0].head(k)]
            ).head(k)

    def collect_line_orders(self, part: pd.DataFrame, n_lines: np.ndarray, lines: pa.Table, want: int) -> None:
        if len(self.line_order_donors) >= want:
            return
        first_line = lines.filter(pc.equal(lines.column("line_number"), 1))
        by_order = dict(zip(first_line.column("order_id").to_pylist(),
                            zip(first_line.column("product_id").to_pylist(),
                                first_line.column("unit_price").to_pylist(), strict=True), strict=True))
        for order_id, count in zip(part["order_id"], n_lines, strict=True):
            if count > 0 and len(self.line_order_donors) < want:
                product_id, unit_price = by_order[order_id]
                self.line_order_donors.append((str(order_id), int(count), str(product_id), float(unit_price)))

    def note_event_file(self, path: Path, rows: pd.DataFrame, k: int) -> None:
        if self.first_event_file is None:
            self.first_event_file = (path, rows.head(k).copy())
        tail = pd.concat([self._event_tails.get(path, rows.iloc[:0]), rows.tail(k)]).tail(k)
        self._event_tails[path] = tail
        latest = max(self._event_tails)
        self.last_event_file = (latest, self._event_tails[latest])


__all__ = ["MANIFEST_NAME", "GenerationError", "GenerationSummary", "generate_landing"]
