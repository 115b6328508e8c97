"""Web server access logs (Combined Log Format) -> silver.access_logs, with regexp_extract only.

`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, e.g.
127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08"
"""

from __future__ import annotations

from rfmlake.contract.entities import QuarantineReason
from rfmlake.ingest.conform import ConformRules, V, _checked, _final, _layer, v
from rfmlake.ingest.sql import Check, col, extract_group, iso_from_parts, lit, plausible_check, shown, token

LOG_LINE_COLUMN = "line"  # the one raw column of access_logs
# Quoted fields allow backslash-escaped quotes, as Apache and nginx write them.
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMBINED_LOG_FORMAT = (
    r"^(\S+) (\S+) (\S+) \[(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}:\d{2}:\d{2}) ([+-]\d{4})\] "
    r'"(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) ' + _QUOTED + " " + _QUOTED + r"\s*$"
)

_BRACKETED = r"\[([^\]]*)\]"


def group(line: str, index: int) -> str:
    return extract_group(line, COMBINED_LOG_FORMAT, index)


def dash_null(value: str) -> str:
    return f"CASE WHEN {value} <> '-' AND {value} <> '' THEN {value} END"


def classify_access_logs(source: str, rules: ConformRules) -> str:
    line = col(LOG_LINE_COLUMN)
    iso = iso_from_parts(group(line, 6), group(line, 5), group(line, 4), group(line, 7), group(line, 8))
    bytes_text = group(line, 13)
    typed = _layer(source, ", ".join([
        "*",
        f"coalesce(regexp_matches({line}, {lit(COMBINED_LOG_FORMAT)}), false) AS _matches",
        f"{token(group(line, 1), rules.key, 'ip')} AS {v('ip_token')}",
        f"{token(dash_null(group(line, 3)), rules.key, 'user')} AS {v('remote_user_token')}",
        f"TRY_CAST({iso} AS TIMESTAMPTZ) AS {v('request_ts')}",
        f"{group(line, 9)} AS {v('method')}",
        f"{group(line, 10)} AS {v('path')}",
        f"{group(line, 11)} AS {v('protocol')}",
        f"TRY_CAST({group(line, 12)} AS INTEGER) AS {v('status')}",
        f"CASE WHEN {bytes_text} = '-' THEN CAST(0 AS BIGINT) ELSE TRY_CAST({bytes_text} AS BIGINT) END "
        f"AS {v('bytes_sent')}",
        f"{dash_null(group(line, 14))} AS {v('referrer')}",
        f"{dash_null(group(line, 15))} AS {v('user_agent')}",
    ]), "lt")
    typed = _layer(typed, f"*, CAST({v('request_ts')} AS DATE) AS {v('request_date')}", "lt2")
    time_text = f"regexp_extract({line}, {lit(_BRACKETED)}, 1)"
    checks = [
        Check(QuarantineReason.UNPARSABLE_LINE, "NOT _matches",
              f"('not Combined Log Format: ' || substring(coalesce({line}, ''), 1, 200))"),
        Check(QuarantineReason.UNPARSABLE_DATE, f"{v('request_ts')} IS NULL", shown("time", time_text)),
        plausible_check("time", v("request_ts"), rules.earliest.isoformat(), rules.latest.isoformat(), time_text),
        Check(QuarantineReason.BAD_TYPE, f"{v('bytes_sent')} IS NULL", shown("bytes", bytes_text)),
    ]
    # Identical lines are kept: the same request twice in one second is real traffic, not a re-delivery.
    return _final(_checked(typed, checks, "CAST(NULL AS VARCHAR)", "lc"), "lf")


__all__ = ["COMBINED_LOG_FORMAT", "LOG_LINE_COLUMN", "V", "classify_access_logs", "dash_null", "group"]
