"""Expectation suites per lake table, defined in code so they can take run parameters (score bins,
segment names, known currencies, the run's time).

A suite is plain data (no great-expectations import here): the runner turns each `Check` into a GE
expectation. Every check carries a severity: `critical` stops the run, `warning` is reported only.
The rule of thumb: critical when the table would feed wrong numbers or clear-text PII downstream
(a broken key, an unknown currency, a negative quantity, an e-mail address in a token column);
warning when it is suspicious but does not corrupt RFM (future timestamps, an empty side table).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rfmlake.contract.entities import LINEAGE_COLUMNS, ORDER_STATUSES, SILVER_TABLES

HEX_TOKEN_REGEX = r"^[0-9a-f]{64}$"
# Loose on purpose: it looks for something shaped like an address inside free text (URLs, paths).
EMAIL_IN_TEXT_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"

GOLD_TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_rfm_features": (
        "customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days", "frequency",
        "monetary", "avg_order_value", "reporting_currency",
    ),
    "customer_rfm": (
        "customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days", "frequency",
        "monetary", "avg_order_value", "r_score", "f_score", "m_score", "rfm_cell", "rfm_segment",
        "cluster_id", "cluster_label", "model_version",
    ),
    "segment_membership_history": ("as_of_date", "customer_id", "rfm_segment", "cluster_label"),
}


class Severity(StrEnum):
    CRITICAL = "critical"  # stops the run
    WARNING = "warning"    # reported only


CRITICAL = Severity.CRITICAL
WARNING = Severity.WARNING

_COLUMN_KWARGS = ("column", "column_A", "column_B")


@dataclass(frozen=True)
class Derived:
    """A column computed in SQL before validation, for rules no built-in expectation states
    (a cross-column tolerance, a lookup in another table). `sources` are the table columns it reads
    (shown in reports, checked for presence); `requires` are other tables it reads."""

    name: str
    sql: str
    sources: tuple[str, ...]
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One expectation: its GE type (snake case, e.g. `expect_column_values_to_be_unique`), its
    keyword arguments, severity and why it matters. `pii=True` means the checked values may be
    personal data: reports show counts only, never values."""

    expectation: str
    kwargs: Mapping[str, Any]
    severity: Severity
    description: str
    pii: bool = False
    derived: tuple[Derived, ...] = ()  # derived columns this check brings along

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the expectation reads (as named in the validated frame)."""
        names = [self.kwargs[key] for key in _COLUMN_KWARGS if key in self.kwargs]
        names.extend(self.kwargs.get("column_list", ()))
        return tuple(names)


@dataclass(frozen=True)
class TableSuite:
    zone: str
    table: str
    checks: tuple[Check, ...]
    key: tuple[str, ...] = ()  # columns identifying a row in reports (never PII)
    expected_columns: tuple[str, ...] = ()  # the table's contract: all must be present
    derived: tuple[Derived, ...] = ()
    required: bool = False  # a missing table is a critical failure, not a skip
    schema_severity: Severity = CRITICAL

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.table}"

    @property
    def suite_name(self) -> str:
        return f"{self.zone}_{self.table}"

    def derived_column(self, name: str) -> Derived | None:
        candidates = (*self.derived, *(d for check in self.checks for d in check.derived))
        return next((d for d in candidates if d.name == name), None)

    def source_columns(self, check: Check) -> tuple[str, ...]:
        """The table columns behind a check, with derived columns resolved to what they read."""
        out: list[str] = []
        for name in check.columns:
            derived = self.derived_column(name)
            out.extend(derived.sources if derived else (name,))
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class QualityContext:
    """What the suites need from the run. `run_at` is the run's start (UTC); a naive datetime is
    read as UTC, like every timestamp in the lake."""

    run_at: datetime
    known_currencies: frozenset[str]
    score_bins: int = 5
    segment_names: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    rfm_source: str = "orders"  # settings rfm.source: the silver table RFM cannot do without

    def __post_init__(self) -> None:
        if self.run_at.tzinfo is None:
            object.__setattr__(self, "run_at", self.run_at.replace(tzinfo=UTC))
        object.__setattr__(self, "known_currencies", frozenset(self.known_currencies))
        object.__setattr__(self, "segment_names", tuple(self.segment_names))
        if not self.known_currencies:
            raise ValueError("QualityContext.known_currencies is empty; pass the ISO 4217 codes (from_settings does)")
        for code in self.known_currencies:
            if not re.fullmatch(r"[A-Z]{3}", code):
                raise ValueError(f"QualityContext.known_currencies: {code!r} is not an ISO 4217 code like 'EUR'")
        if self.score_bins < 2:
            raise ValueError(f"QualityContext.score_bins must be >= 2, got {self.score_bins}")
        if self.rfm_source not in ("orders", "events"):
            raise ValueError(f"QualityContext.rfm_source must be 'orders' or 'events', got {self.rfm_source!r}")

    @classmethod
    def from_settings(
        cls, settings: Any, *, segment_names: Iterable[str] = (), run_at: datetime | None = None
    ) -> QualityContext:
        """Build from rfmlake.settings.Settings: the ISO 4217 codes, its score bins, its rfm.source."""
        from rfmlake.contract.currencies import ISO_4217_CODES

        return cls(
            run_at=run_at or datetime.now(UTC),
            known_currencies=frozenset(ISO_4217_CODES),
            score_bins=settings.rfm.score_bins,
            segment_names=tuple(segment_names),
            rfm_source=settings.rfm.source,
        )

    @property
    def run_at_utc_naive(self) -> datetime:
        """The run time as the lake reads timestamps: naive wall-clock UTC."""
        return self.run_at.astimezone(UTC).replace(tzinfo=None)


# -- building blocks ------------------------------------------------------------------------------
def not_null(column: str, severity: Severity = CRITICAL, why: str = "") -> Check:
    return Check("expect_column_values_to_not_be_null", {"column": column}, severity,
                 why or f"{column} is never null")


def unique(column: str, severity: Severity = CRITICAL, why: str = "") -> Check:
    return Check("expect_column_values_to_be_unique", {"column": column}, severity,
                 why or f"{column} identifies one row")


def compound_unique(columns: tuple[str, ...], severity: Severity = CRITICAL, why: str = "") -> Check:
    return Check("expect_compound_columns_to_be_unique", {"column_list": list(columns)}, severity,
                 why or f"({', '.join(columns)}) identifies one row")


def in_set(column: str, values: Iterable[Any], severity: Severity = CRITICAL, why: str = "") -> Check:
    return Check("expect_column_values_to_be_in_set", {"column": column, "value_set": sorted(set(values))},
                 severity, why or f"{column} takes only known values")


def between(column: str, *, min_value: Any = None, max_value: Any = None, strict_min: bool = False,
            severity: Severity = CRITICAL, why: str = "") -> Check:
    kwargs: dict[str, Any] = {"column": column}
    if min_value is not None:
        kwargs["min_value"] = min_value
        kwargs["strict_min"] = strict_min
    if max_value is not None:
        kwargs["max_value"] = max_value
    return Check("expect_column_values_to_be_between", kwargs, severity, why or f"{column} in range")


def token(column: str) -> Check:
    return Check("expect_column_values_to_match_regex", {"column": column, "regex": HEX_TOKEN_REGEX}, CRITICAL,
                 f"{column} holds a 64-hex HMAC token, never clear text", pii=True)


def no_email_in(column: str) -> Check:
    return Check("expect_column_values_to_not_match_regex", {"column": column, "regex": EMAIL_IN_TEXT_REGEX},
                 WARNING, f"no e-mail address leaks through {column}", pii=True)


def rows_at_least_one(severity: Severity, why: str = "the table is not empty") -> Check:
    return Check("expect_table_row_count_to_be_between", {"min_value": 1}, severity, why)


def single_value(column: str, severity: Severity = CRITICAL, why: str = "") -> Check:
    return Check("expect_column_unique_value_count_to_be_between", {"column": column, "max_value": 1}, severity,
                 why or f"one {column} per table")


def is_true(derived: str, severity: Severity, why: str) -> Check:
    return Check("expect_column_values_to_be_in_set", {"column": derived, "value_set": [True]}, severity, why)


def a_at_least_b(column_a: str, column_b: str, severity: Severity, why: str) -> Check:
    return Check("expect_column_pair_values_a_to_be_greater_than_b",
                 {"column_A": column_a, "column_B": column_b, "or_equal": True}, severity, why)


def not_in_future(column: str, ctx: QualityContext, *, is_date: bool = False) -> Check:
    # Compared in SQL as "days after the run": GE's datetime range check maps every value through
    # Python (about 5 s per million rows); a float column is vectorised, and the unexpected values
    # read well ("2039.5" days after the run).
    run = ctx.run_at_utc_naive
    if is_date:
        sql = f"date_diff('day', DATE '{run:%Y-%m-%d}', {column})"
    else:
        sql = f"(epoch_us({column}) - {int(ctx.run_at.timestamp() * 1_000_000)}) / 86400e6"
    name = f"_{column}_days_after_run"
    return Check("expect_column_values_to_be_between", {"column": name, "max_value": 0}, WARNING,
                 f"{column} is not after the run ({run:%Y-%m-%dT%H:%M:%SZ}); values are days after it",
                 derived=(Derived(name, sql, sources=(column,)),))


def _silver_columns(table: str) -> tuple[str, ...]:
    return tuple(name for name, _, _ in SILVER_TABLES[table]) + tuple(name for name, _, _ in LINEAGE_COLUMNS)


# -- silver -----------------------------------------------------------------------------------------
def silver_suites(ctx: QualityContext) -> tuple[TableSuite, ...]:
    currencies = sorted(ctx.known_currencies)
    # RFM cannot do without the table its purchases come from (rfm.source): orders, or events.
    on_orders = ctx.rfm_source == "orders"
    return (
        TableSuite(
            "silver", "orders", key=("order_id",), required=on_orders,
            expected_columns=_silver_columns("orders"),
            checks=(
                rows_at_least_one(CRITICAL if on_orders else WARNING,
                                  "orders is not empty: without orders there is no RFM" if on_orders else
                                  "orders is not empty (RFM works on purchase events: rfm.source events)"),
                not_null("order_id"), unique("order_id"),
                not_null("customer_id", why="every order has a buyer (RFM groups by customer)"),
                not_null("order_ts", why="every order has a time (recency)"),
                not_null("status"), in_set("status", ORDER_STATUSES, why="status is one of the contract's values"),
                not_null("currency", why="every order has a currency (monetary)"),
                in_set("currency", currencies, why="currency is an ISO 4217 code (monetary conversion)"),
                between("order_total", min_value=0, why="order totals are not negative"),
                not_in_future("order_ts", ctx),
                not_in_future("order_date", ctx, is_date=True),
            ),
        ),
        TableSuite(
            "silver", "order_items", key=("order_id", "line_number"),
            expected_columns=_silver_columns("order_items"),
            derived=(Derived("_order_known", "order_id IN (SELECT order_id FROM silver.orders)",
                             sources=("order_id",), requires=("silver.orders",)),),
            checks=(
                rows_at_least_one(WARNING),
                not_null("order_id"), not_null("line_number"),
                compound_unique(("order_id", "line_number")),
                not_null("product_id", WARNING),
                not_null("quantity"), between("quantity", min_value=0, strict_min=True, why="quantity > 0"),
                not_null("unit_price"), between("unit_price", min_value=0, why="unit prices are not negative"),
                between("discount", min_value=0, why="discounts are not negative"),
                not_null("line_amount"), between("line_amount", min_value=0, why="line amounts are not negative"),
                is_true("_order_known", WARNING, "every line's order_id is in silver.orders"),
            ),
        ),
        TableSuite(
            "silver", "customers", key=("customer_id",),
            expected_columns=_silver_columns("customers"),
            derived=(Derived("_has_email_matches",
                             "(email_token IS NOT NULL) = coalesce(has_email, false)",
                             sources=("email_token", "has_email")),),
            checks=(
                rows_at_least_one(WARNING),
                not_null("customer_id"), unique("customer_id"),
                token("email_token"), token("phone_token"), token("first_name_token"), token("last_name_token"),
                is_true("_has_email_matches", WARNING, "has_email is true exactly when email_token is set"),
                Check("expect_column_values_to_match_regex", {"column": "country", "regex": r"^[A-Z]{2}$"},
                      WARNING, "country is ISO 3166 alpha-2, upper case"),
                not_in_future("created_at", ctx), not_in_future("updated_at", ctx),
            ),
        ),
        TableSuite(
            "silver", "products", key=("product_id",),
            expected_columns=_silver_columns("products"),
            checks=(
                rows_at_least_one(WARNING),
                not_null("product_id"), unique("product_id"),
                between("price", min_value=0, severity=WARNING, why="list prices are not negative"),
                in_set("currency", currencies, WARNING, "currency is an ISO 4217 code"),
            ),
        ),
        TableSuite(
            "silver", "events", key=("event_id",), required=not on_orders,
            expected_columns=_silver_columns("events"),
            checks=(
                rows_at_least_one(WARNING if on_orders else CRITICAL,
                                  "the table is not empty" if on_orders else
                                  "events is not empty: RFM works on its purchase events (rfm.source events)"),
                not_null("event_id"), unique("event_id"),
                not_null("event_ts"), not_null("event_type"),
                token("ip_token"),
                no_email_in("url"), no_email_in("referrer"),
                not_in_future("event_ts", ctx), not_in_future("event_date", ctx, is_date=True),
            ),
        ),
        TableSuite(
            "silver", "access_logs",
            expected_columns=_silver_columns("access_logs"),
            checks=(
                rows_at_least_one(WARNING),
                not_null("request_ts"),
                token("ip_token"), token("remote_user_token"),
                no_email_in("path"), no_email_in("referrer"),
                between("status", min_value=100, max_value=599, severity=WARNING, why="an HTTP status code"),
                between("bytes_sent", min_value=0, severity=WARNING, why="byte counts are not negative"),
                not_in_future("request_ts", ctx),
            ),
        ),
        TableSuite(
            "silver", "currency_rates", key=("rate_date", "base_currency", "currency"),
            expected_columns=_silver_columns("currency_rates"),
            checks=(
                # no rows is normal: a shop in one currency needs no rates
                not_null("rate_date"), not_null("base_currency"), not_null("currency"),
                compound_unique(("rate_date", "base_currency", "currency"),
                                why="one rate per day, base and currency (monetary conversion)"),
                in_set("currency", currencies, why="currency is an ISO 4217 code"),
                in_set("base_currency", currencies, why="base_currency is an ISO 4217 code"),
                not_null("rate"),
                between("rate", min_value=0, strict_min=True, why="rates are > 0"),
                not_in_future("rate_date", ctx, is_date=True),
            ),
        ),
    )


# -- gold -------------------------------------------------------------------------------------------
def _rfm_value_checks() -> tuple[Check, ...]:
    return (
        not_null("customer_id"), unique("customer_id", why="one row per customer"),
        not_null("as_of_date"), single_value("as_of_date", why="one as_of date per build"),
        not_null("recency_days"), between("recency_days", min_value=0, why="recency_days >= 0"),
        not_null("frequency"), between("frequency", min_value=1, why="a customer here has >= 1 order"),
        not_null("monetary"), between("monetary", min_value=0, why="monetary >= 0"),
        a_at_least_b("last_order_date", "first_order_date", WARNING, "last_order_date >= first_order_date"),
        between("_aov_deviation", max_value=0.01, severity=WARNING,
                why="avg_order_value = monetary / frequency (within 0.01)"),
        is_true("_recency_matches", WARNING, "recency_days = as_of_date - last_order_date in days"),
    )


_RFM_DERIVED = (
    Derived("_aov_deviation", "abs(avg_order_value - monetary / nullif(frequency, 0))",
            sources=("avg_order_value", "monetary", "frequency")),
    Derived("_recency_matches", "recency_days = date_diff('day', last_order_date, as_of_date)",
            sources=("recency_days", "last_order_date", "as_of_date")),
)


def gold_suites(ctx: QualityContext) -> tuple[TableSuite, ...]:
    if not ctx.segment_names:
        raise ValueError("QualityContext.segment_names is empty; pass the segment rule table's names")
    scores = ("r_score", "f_score", "m_score")
    return (
        TableSuite(
            "gold", "customer_rfm_features", key=("customer_id",),
            expected_columns=GOLD_TABLE_COLUMNS["customer_rfm_features"],
            derived=_RFM_DERIVED,
            checks=(
                rows_at_least_one(WARNING, "at least one customer has a counted order"),
                *_rfm_value_checks(),
                in_set("reporting_currency", sorted(ctx.known_currencies), WARNING,
                       "reporting_currency is an ISO 4217 code"),
                single_value("reporting_currency", why="one reporting currency for every customer"),
            ),
        ),
        TableSuite(
            "gold", "customer_rfm", key=("customer_id",), required=True,
            expected_columns=GOLD_TABLE_COLUMNS["customer_rfm"],
            derived=_RFM_DERIVED,
            checks=(
                rows_at_least_one(CRITICAL, "segmentation produced customers"),
                *_rfm_value_checks(),
                *(not_null(score) for score in scores),
                *(between(score, min_value=1, max_value=ctx.score_bins, why=f"{score} in 1..{ctx.score_bins}")
                  for score in scores),
                not_null("rfm_segment"),
                in_set("rfm_segment", ctx.segment_names, why="rfm_segment is a name of the rule table"),
                not_null("cluster_id"),
                not_null("cluster_label", WARNING),
                not_null("model_version", WARNING, "every row says which model scored it"),
            ),
        ),
        TableSuite(
            "gold", "segment_membership_history", key=("as_of_date", "customer_id"),
            expected_columns=GOLD_TABLE_COLUMNS["segment_membership_history"],
            checks=(
                rows_at_least_one(WARNING),
                not_null("as_of_date"), not_null("customer_id"),
                compound_unique(("as_of_date", "customer_id"), why="one membership per customer and as_of"),
                # Warning: older as_of dates may carry the names of a rule table since replaced.
                in_set("rfm_segment", ctx.segment_names, WARNING, "rfm_segment is a name of the rule table"),
            ),
        ),
    )


def suites_for(zone: str, ctx: QualityContext) -> tuple[TableSuite, ...]:
    if zone == "silver":
        return silver_suites(ctx)
    if zone == "gold":
        return gold_suites(ctx)
    raise ValueError(f"no quality suites for zone {zone!r}; zones with suites: silver, gold")
