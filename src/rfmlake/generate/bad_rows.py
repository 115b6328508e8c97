"""The bad rows the generator injects on request, one intended quarantine reason each.

Rules that keep every injected row to exactly one reason:
- bad order headers get fresh order ids that no order line references, so quarantining them never
  turns clean lines into unknown_order;
- bad order lines reference a clean order with a line number that order does not use, so a line
  that were accepted would never collide with a clean line's key;
- exact duplicates copy clean rows verbatim, in the same format (CSV->CSV, JSON->JSON,
  Parquet->Parquet) so the copy is the same row however a reader types it;
- conflicting duplicates re-send a header-only order (no lines) with another total in a later file,
  so whichever version wins, header and lines cannot disagree;
- a CSV line with an unclosed quote is always the last line of its file, so it cannot swallow the
  lines after it;
- required fields are checked before references: an order line with an empty order_id is missing_key,
  not unknown_order.

Counts are rows expected in quarantine: for a duplicate pair that is one row (the extra copy; for a
conflicting pair the older one, since the newer row wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rfmlake.contract import QuarantineReason

UNPARSABLE_DATES: tuple[str, ...] = ("31/02/2024 25:61", "yesterday")
BAD_QUANTITY = "two"
BAD_UNIT_PRICE = "abc"
BAD_ORDER_TOTAL = "x"
UNKNOWN_CURRENCY = "XXX"
UNKNOWN_STATUS = "shipped-ish"
# Ids an API could never serve (a slash, a space, a non-ASCII letter).
BAD_KEYS: tuple[str, ...] = ("O/2024/17", "O 17", "O\u00e917")
# Dates no real order has: far future, the spreadsheet zero date, year one.
IMPLAUSIBLE_DATES: tuple[str, ...] = ("9999-12-31", "1899-12-30", "0001-01-01T00:00:00Z")

# Access-log lines that are not Combined Log Format (truncated, other formats, noise).
UNPARSABLE_LOG_LINES: tuple[str, ...] = (
    "GET /index.html",
    "this is not a log line",
    '10.0.0.1 - - [32/Foo/2026:99:99:99 +0000] "GET / HTTP/1.1" 200',
    "#Fields: date time c-ip cs-method cs-uri-stem sc-status",
    '{"msg": "upstream timed out", "level": "error"}',
)


@dataclass(frozen=True)
class InjectedRow:
    entity: str
    reason: str
    file: str
    detail: str


@dataclass
class BadRowBook:
    """What was injected where; the manifest is built from it."""

    rows: list[InjectedRow] = field(default_factory=list)

    def add(self, entity: str, reason: QuarantineReason, file: str, detail: str) -> None:
        self.rows.append(InjectedRow(entity, reason.value, file, detail))

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for row in self.rows:
            per_entity = out.setdefault(row.entity, {})
            per_entity[row.reason] = per_entity.get(row.reason, 0) + 1
        return {entity: dict(sorted(reasons.items())) for entity, reasons in sorted(out.items())}

    def details(self) -> list[dict[str, str]]:
        return [
            {"entity": r.entity, "reason": r.reason, "file": r.file, "detail": r.detail} for r in self.rows
        ]


def per_kind(order_lines: int) -> int:
    """How many rows of each bad kind: a few, growing slowly with size so large runs see some too;
    one of each in a tiny shop (under 1,000 lines), which has too few orders to spoil three."""
    return (1 if order_lines < 1_000 else 3) + min(order_lines // 1_000_000, 7)
