"""Strict parsers for landed strings as Spark column expressions (no UDFs), and the building blocks
that turn a list of ordered checks into one quarantine reason and detail per row.

Spark's own casts are lenient (`cast('2.5' as int)` is 2, `cast('2024' as timestamp)` is a date), so
each parser first checks the text's shape with a regular expression and only then casts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rfmlake.contract.entities import QuarantineReason

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# The documented order in which reasons are tried; a row gets the first that applies.
REASON_ORDER: tuple[QuarantineReason, ...] = (
    QuarantineReason.MALFORMED_RECORD,
    QuarantineReason.UNPARSABLE_LINE,
    QuarantineReason.MISSING_KEY,
    QuarantineReason.UNPARSABLE_DATE,
    QuarantineReason.BAD_TYPE,
    QuarantineReason.NEGATIVE_QUANTITY,
    QuarantineReason.NEGATIVE_AMOUNT,
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
_INT = r"^[+-]?\d+$"
_DECIMAL = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
MONTHS: dict[str, int] = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}

REASON = "_reason"
DETAIL = "_detail"


def col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")


def is_blank(column: Column) -> Column:
    from pyspark.sql import functions as F

    return column.isNull() | (F.trim(column) == "")


def clean(column: Column) -> Column:
    """Trimmed text, null when blank."""
    from pyspark.sql import functions as F

    return F.when(~is_blank(column), F.trim(column))


def parse_timestamp(column: Column) -> Column:
    """ISO 8601 text -> UTC timestamp. No offset means UTC (the session time zone); an offset is
    converted; a date alone is midnight UTC. Anything else is null."""
    from pyspark.sql import functions as F

    text = F.trim(column)
    return F.when(text.rlike(ISO_TIMESTAMP), text.cast("timestamp"))


def month_number(abbreviation: Column) -> Column:
    from pyspark.sql import functions as F

    pairs = [item for name, number in MONTHS.items() for item in (F.lit(name), F.lit(f"{number:02d}"))]
    return F.element_at(F.create_map(*pairs), F.lower(abbreviation))


def iso_from_parts(year: Column, month: Column, day: Column, time: Column, offset: Column) -> Column:
    """Assemble 'yyyy-MM-ddTHH:mm:ss+hh:mm' from regex groups (offset given as +hhmm)."""
    from pyspark.sql import functions as F

    return F.concat(
        year, F.lit("-"), month_number(month), F.lit("-"), F.lpad(day, 2, "0"), F.lit("T"), time,
        F.substring(offset, 1, 3), F.lit(":"), F.substring(offset, 4, 2),
    )


def parse_int(column: Column, type_name: str = "int") -> Column:
    from pyspark.sql import functions as F

    text = F.trim(column)
    return F.when(text.rlike(_INT), text.cast(type_name))


def parse_decimal(column: Column, type_name: str) -> Column:
    from pyspark.sql import functions as F

    text = F.trim(column)
    return F.when(text.rlike(_DECIMAL), text.cast(type_name))


def parse_bool(column: Column) -> Column:
    from pyspark.sql import functions as F

    text = F.lower(F.trim(column))
    return F.when(text.isin(*_TRUE), F.lit(True)).when(text.isin(*_FALSE), F.lit(False))


def shown(name: str, column: Column) -> Column:
    """`name='value'` for a detail message (values cut to 200 characters)."""
    from pyspark.sql import functions as F

    return F.concat(F.lit(f"{name}='"), F.substring(F.coalesce(column, F.lit("")), 1, 200), F.lit("'"))


@dataclass(frozen=True)
class Check:
    reason: QuarantineReason
    failed: Column  # true when the row fails this check
    detail: Column  # human-readable detail for the quarantine row


def with_checks(df: DataFrame, checks: list[Check]) -> DataFrame:
    """Add _reason/_detail: the first failing check in REASON_ORDER (then list order), else null."""
    from pyspark.sql import functions as F

    ordered = sorted(checks, key=lambda c: REASON_ORDER.index(c.reason))  # sorted() is stable
    if not ordered:
        return df.withColumn(REASON, F.lit(None).cast("string")).withColumn(DETAIL, F.lit(None).cast("string"))
    reason = F.when(F.coalesce(ordered[0].failed, F.lit(False)), F.lit(ordered[0].reason.value))
    detail = F.when(F.coalesce(ordered[0].failed, F.lit(False)), ordered[0].detail)
    for check in ordered[1:]:
        failed = F.coalesce(check.failed, F.lit(False))
        reason = reason.when(failed, F.lit(check.reason.value))
        detail = detail.when(failed, check.detail)
    return df.withColumn(REASON, reason).withColumn(DETAIL, detail)


def missing_key_checks(required: tuple[str, ...], when: Column | None = None) -> list[Check]:
    checks = []
    for name in required:
        failed = is_blank(col(name))
        if when is not None:
            failed = failed & when
        checks.append(Check(QuarantineReason.MISSING_KEY, failed, _lit(f"missing {name}")))
    return checks


def _lit(text: str) -> Column:
    from pyspark.sql import functions as F

    return F.lit(text)


def malformed_check(corrupt_column: str) -> Check:
    from pyspark.sql import functions as F

    corrupt = col(corrupt_column)
    return Check(
        QuarantineReason.MALFORMED_RECORD,
        corrupt.isNotNull(),
        F.concat(F.lit("record could not be read as a row: "), F.substring(corrupt, 1, 200)),
    )


def date_check(name: str, parsed: Column) -> Check:
    return Check(QuarantineReason.UNPARSABLE_DATE, ~is_blank(col(name)) & parsed.isNull(), shown(name, col(name)))


def type_check(name: str, parsed: Column, type_name: str) -> Check:
    from pyspark.sql import functions as F

    return Check(
        QuarantineReason.BAD_TYPE,
        ~is_blank(col(name)) & parsed.isNull(),
        F.concat(shown(name, col(name)), F.lit(f" is not a valid {type_name}")),
    )


def deduplicate(df: DataFrame, key: list[Column], newest_first: list[Column] | None = None) -> DataFrame:
    """Among rows not yet quarantined, keep one per key: the first by `newest_first`, then the
    lexicographically last _source_file, then the highest _row_hash (never row order or
    partitioning). A loser with the winner's _row_hash is a duplicate, any other a conflicting one."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [*(newest_first or []), F.col("_source_file").desc(), F.col("_row_hash").desc()]
    window = Window.partitionBy(*key, F.col(REASON).isNull()).orderBy(*order)
    ranked = (
        df.withColumn("_rank", F.row_number().over(window))
        .withColumn("_winner_hash", F.first("_row_hash").over(window))
        .withColumn("_winner_file", F.first("_source_file").over(window))
    )
    loser = F.col(REASON).isNull() & (F.col("_rank") > 1)
    same = F.col("_row_hash") == F.col("_winner_hash")
    key_text = F.concat_ws("|", *[F.coalesce(k.cast("string"), F.lit("")) for k in key])
    reason = (
        F.when(loser & same, F.lit(QuarantineReason.DUPLICATE.value))
        .when(loser, F.lit(QuarantineReason.CONFLICTING_DUPLICATE.value))
        .otherwise(F.col(REASON))
    )
    detail = (
        F.when(loser & same, F.concat(F.lit("same row as kept from "), F.col("_winner_file"), F.lit(" (key "),
                                      key_text, F.lit(")")))
        .when(loser, F.concat(F.lit("key "), key_text, F.lit(" has other content; kept the row from "),
                              F.col("_winner_file")))
        .otherwise(F.col(DETAIL))
    )
    # Detail first: both expressions read the reason as it was before this step.
    return (
        ranked.withColumn(DETAIL, detail)
        .withColumn(REASON, reason)
        .drop("_rank", "_winner_hash", "_winner_file")
    )
