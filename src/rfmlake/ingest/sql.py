"""The building blocks of the ingest transforms as SQL expressions, written once in DuckDB's dialect.

Every transform of landing -> bronze -> silver is SQL text built from these functions. DuckDB runs
it as written (the local engine); Spark runs the same statements transpiled by sqlglot (Glue,
rfmlake.ingest.engine). Only constructs both engines agree on are used; the differences that
matter are handled here once (a timestamp with an offset is TIMESTAMPTZ in DuckDB and TIMESTAMP in
Spark, DuckDB's regexp_replace needs 'g' to replace every match, `||` propagates nulls in both).

Engines' casts are lenient (`cast('2.5' as int)` is 2 in Spark, `cast('2024' as timestamp)` a
date), so each parser first checks the text's shape with a regular expression and only then casts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from rfmlake.contract.entities import QuarantineReason

# The documented order in which reasons are tried; a row gets the first that applies.
REASON_ORDER: tuple[QuarantineReason, ...] = (
    QuarantineReason.MALFORMED_RECORD,
    QuarantineReason.UNPARSABLE_LINE,
    QuarantineReason.MISSING_KEY,
    QuarantineReason.BAD_KEY,
    QuarantineReason.UNPARSABLE_DATE,
    QuarantineReason.IMPLAUSIBLE_DATE,
    QuarantineReason.BAD_TYPE,
    QuarantineReason.NEGATIVE_QUANTITY,
    QuarantineReason.NEGATIVE_AMOUNT,
    QuarantineReason.DISCOUNT_EXCEEDS_LINE,
    QuarantineReason.UNKNOWN_CURRENCY,
    QuarantineReason.UNKNOWN_STATUS,
    QuarantineReason.DUPLICATE,
    QuarantineReason.CONFLICTING_DUPLICATE,
    QuarantineReason.UNKNOWN_ORDER,
)

ISO_TIMESTAMP = (
    r"^\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
)
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_INT = r"^[+-]?\d{1,18}$"
_DECIMAL = r"^[+-]?(\d{1,15}(\.\d*)?|\.\d+)$"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
MONTHS: tuple[str, ...] = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# An id (customer, order, product, event) may be fetched by URL later: printable, no slash or
# backslash, at most 128 characters (docs/pipeline.md, reason bad_key).
ID_PATTERN = r"^[A-Za-z0-9._:@+=~#-]{1,128}$"

REASON = "_reason"
DETAIL = "_detail"
HASH_SEPARATOR_CODE = 31  # ASCII unit separator: does not occur in real field values
_WHITESPACE_CLASS = r"[ \t\n\r\f\x0B]"  # one whitespace set for SQL and Python (str.strip() agrees)


def ident(name: str) -> str:
    """A quoted identifier (sqlglot turns the quotes into Spark's backticks)."""
    return '"' + name.replace('"', '""') + '"'


col = ident


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lit_list(values: Sequence[str]) -> str:
    return ", ".join(lit(v) for v in values)


def is_blank(x: str) -> str:
    return f"({x} IS NULL OR trim({x}) = '')"


def clean(x: str) -> str:
    """Trimmed text, null when blank."""
    return f"CASE WHEN NOT {is_blank(x)} THEN trim({x}) END"


def matches(x: str, pattern: str) -> str:
    return f"regexp_matches({x}, {lit(pattern)})"


def single_group(pattern: str, index: int) -> str:
    """`pattern` with only its `index`-th capturing group left capturing (the others made
    non-capturing), so `regexp_extract(x, single_group(p, i), 1)` is group i on every engine
    (DuckDB extracts groups 0 to 9 only)."""
    out, group, i = [], 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if char == "[":  # a character class: copy it whole (a '(' inside is literal)
            end = i + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i:end + 1])
            i = end + 1
            continue
        if char == "(" and not pattern.startswith("(?", i):
            group += 1
            out.append("(" if group == index else "(?:")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def extract_group(x: str, pattern: str, index: int) -> str:
    return f"regexp_extract({x}, {lit(single_group(pattern, index))}, 1)"


def parse_timestamp(x: str) -> str:
    """ISO 8601 text -> UTC timestamp. No offset means UTC (the session time zone); an offset is
    converted; a date alone is midnight UTC. Anything else is null."""
    return f"CASE WHEN {matches(f'trim({x})', ISO_TIMESTAMP)} THEN TRY_CAST(trim({x}) AS TIMESTAMPTZ) END"


def parse_date(x: str) -> str:
    """An ISO 8601 calendar date (YYYY-MM-DD) -> DATE; anything else (a time, another format, a
    day that does not exist) is null."""
    return f"CASE WHEN {matches(f'trim({x})', ISO_DATE)} THEN TRY_CAST(trim({x}) AS DATE) END"


def parse_int(x: str, type_name: str = "INTEGER") -> str:
    return f"CASE WHEN {matches(f'trim({x})', _INT)} THEN TRY_CAST(trim({x}) AS {type_name}) END"


def parse_decimal(x: str, type_name: str) -> str:
    return f"CASE WHEN {matches(f'trim({x})', _DECIMAL)} THEN TRY_CAST(trim({x}) AS {type_name}) END"


def parse_bool(x: str) -> str:
    text = f"lower(trim({x}))"
    return f"CASE WHEN {text} IN ({lit_list(_TRUE)}) THEN true WHEN {text} IN ({lit_list(_FALSE)}) THEN false END"


def month_number(abbreviation: str) -> str:
    cases = " ".join(f"WHEN {lit(m)} THEN '{i:02d}'" for i, m in enumerate(MONTHS, 1))
    return f"CASE lower({abbreviation}) {cases} END"


def iso_from_parts(year: str, month: str, day: str, time: str, offset: str) -> str:
    """'yyyy-MM-ddTHH:mm:ss+hh:mm' from regex groups (offset given as +hhmm)."""
    return (f"({year} || '-' || {month_number(month)} || '-' || lpad({day}, 2, '0') || 'T' || {time} || "
            f"substring({offset}, 1, 3) || ':' || substring({offset}, 4, 2))")


def shown(name: str, x: str) -> str:
    """`name='value'` for a detail message (values cut to 200 characters)."""
    return f"({lit(name + '=' + chr(39))} || substring(coalesce({x}, ''), 1, 200) || '''')"


def as_text(x: str) -> str:
    return f"CAST({x} AS VARCHAR)"


@dataclass(frozen=True)
class Check:
    reason: QuarantineReason
    failed: str  # SQL: true when the row fails this check
    detail: str  # SQL: human-readable detail for the quarantine row


def with_checks(checks: Sequence[Check]) -> tuple[str, str]:
    """(reason, detail) SQL: the first failing check in REASON_ORDER (then list order), else null."""
    ordered = sorted(checks, key=lambda c: REASON_ORDER.index(c.reason))  # sorted() is stable
    if not ordered:
        return "CAST(NULL AS VARCHAR)", "CAST(NULL AS VARCHAR)"
    reason = " ".join(f"WHEN coalesce({c.failed}, false) THEN {lit(c.reason.value)}" for c in ordered)
    detail = " ".join(f"WHEN coalesce({c.failed}, false) THEN {c.detail}" for c in ordered)
    return f"CASE {reason} END", f"CASE {detail} END"


def missing_key_checks(required: Sequence[str], when: str | None = None) -> list[Check]:
    checks = []
    for name in required:
        failed = is_blank(col(name))
        if when is not None:
            failed = f"({failed} AND {when})"
        checks.append(Check(QuarantineReason.MISSING_KEY, failed, lit(f"missing {name}")))
    return checks


def bad_key_checks(names: Sequence[str]) -> list[Check]:
    """Ids the profile API could never serve (a slash, control characters, 3,000 characters)."""
    return [
        Check(QuarantineReason.BAD_KEY, f"(NOT {is_blank(col(n))} AND NOT {matches(f'trim({col(n)})', ID_PATTERN)})",
              f"({shown(n, col(n))} || ' is not an id: 1 to 128 letters, digits or . _ : @ + = ~ # -')")
        for n in names
    ]


def malformed_check(corrupt_column: str) -> Check:
    corrupt = col(corrupt_column)
    return Check(QuarantineReason.MALFORMED_RECORD, f"{corrupt} IS NOT NULL",
                 f"('record could not be read as a row: ' || substring({corrupt}, 1, 200))")


def date_check(name: str, parsed: str) -> Check:
    return Check(QuarantineReason.UNPARSABLE_DATE, f"(NOT {is_blank(col(name))} AND {parsed} IS NULL)",
                 shown(name, col(name)))


def plausible_check(name: str, parsed: str, earliest: str, latest: str, raw: str | None = None) -> Check:
    """A timestamp outside [earliest, latest) (ISO dates; settings.ingest). `raw` is the landed text
    shown in the detail (default: the column `name`)."""
    failed = f"({parsed} < CAST({lit(earliest)} AS TIMESTAMPTZ) OR {parsed} >= CAST({lit(latest)} AS TIMESTAMPTZ))"
    shown_value = shown(name, raw if raw is not None else col(name))
    return Check(QuarantineReason.IMPLAUSIBLE_DATE, failed,
                 f"({shown_value} || {lit(f' is outside the plausible window {earliest} to {latest}')})")


def type_check(name: str, parsed: str, type_name: str) -> Check:
    return Check(QuarantineReason.BAD_TYPE, f"(NOT {is_blank(col(name))} AND {parsed} IS NULL)",
                 f"({shown(name, col(name))} || {lit(f' is not a valid {type_name}')})")


def negative_check(name: str, value: str, reason: QuarantineReason, strict: bool = False) -> Check:
    failed = f"({value} <= 0)" if strict else f"({value} < 0)"
    return Check(reason, failed, f"({lit(name + '=')} || {as_text(value)})")


# -- PII tokens -----------------------------------------------------------------------------------

PII_KINDS: tuple[str, ...] = ("email", "phone", "name", "ip", "user")
_BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104)


def hmac_pads(key: bytes) -> tuple[str, str]:
    """(K xor ipad, K xor opad) as hex, per RFC 2104."""
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\x00")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


def normalize_pii(x: str, kind: str) -> str:
    """SQL twin of rfmlake.ingest.pii.normalize: trimmed (one explicit whitespace set), lower-cased
    for emails and names, digits (with a leading + kept) for phones; null when nothing is left."""
    if kind not in PII_KINDS:
        raise ValueError(f"unknown PII kind {kind!r}; kinds: {PII_KINDS}")
    text = f"regexp_replace({x}, {lit(f'^{_WHITESPACE_CLASS}+|{_WHITESPACE_CLASS}+$')}, '', 'g')"
    if kind in ("email", "name"):
        text = f"lower({text})"
    elif kind == "phone":
        digits = f"regexp_replace({text}, '[^0-9]', '', 'g')"
        text = f"CASE WHEN substring({text}, 1, 1) = '+' AND {digits} <> '' THEN '+' || {digits} ELSE {digits} END"
    return f"CASE WHEN {text} <> '' THEN {text} END"


def token(x: str, key: bytes, kind: str) -> str:
    """HMAC-SHA256 hex of the normalized value, in SQL: H((K xor opad) || H((K xor ipad) || m))."""
    inner_pad, outer_pad = hmac_pads(key)
    message = normalize_pii(x, kind)
    inner = f"sha256(unhex('{inner_pad}') || encode({message}))"
    return f"CASE WHEN {message} IS NOT NULL THEN sha256(unhex('{outer_pad}') || unhex({inner})) END"


def row_hash(raw_columns: Sequence[str], extra_columns: Sequence[str], corrupt_column: str) -> str:
    """SHA-256 over the raw values in canonical order: contract columns (null and '' alike, as CSV
    and JSON disagree on them), then non-empty extra columns as name=value sorted by name, then the
    corrupt record text. The same row gives the same hash whether it came as CSV, JSON or Parquet."""
    parts = [f"coalesce({col(c)}, '')" for c in raw_columns]
    for name in sorted(extra_columns):
        value = col(name)
        parts.append(f"CASE WHEN {value} IS NOT NULL AND {value} <> '' THEN {lit(name + '=')} || {value} END")
    parts.append(col(corrupt_column))
    return f"sha256(concat_ws(chr({HASH_SEPARATOR_CODE}), {', '.join(parts)}))"


def file_id(relative_path: str) -> str:
    """The partition value of a landing file in bronze and silver: short, stable, no slashes."""
    return hashlib.sha256(relative_path.encode("utf-8")).hexdigest()[:16]
