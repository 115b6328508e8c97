"""Every DuckDB query the package reads rows of goes through rfmlake.lake.duck: fetch() for a whole
result, batches() for a stream. `con.execute(sql).fetchall()` (and the other fetches) streams the
result, and DuckDB 1.5 deadlocks a streamed query with a UNION ALL of joins once the result outgrows
its buffer (docs/adr/0024): the 10M bench's recommendations stage hung there."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FETCHES = {"df", "fetchall", "fetchmany", "to_arrow_table", "fetch_arrow_table", "arrow", "fetchnumpy",
           "fetch_df", "fetchdf", "fetch_record_batch", "to_arrow_reader", "pl"}
# SQLite, not DuckDB; and the helpers themselves
EXEMPT = {"src/rfmlake/profiles/embedded.py", "src/rfmlake/lake/duck.py"}


def _statement_kind(call: ast.Call) -> str:
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value.lstrip().split(" ", 1)[0].upper()
    if isinstance(first, ast.JoinedStr) and first.values and isinstance(first.values[0], ast.Constant):
        return str(first.values[0].value).lstrip().split(" ", 1)[0].upper()
    return ""


def streamed_reads(source: str) -> list[int]:
    """Lines where rows are fetched straight from `<x>.execute(...)`, other than DESCRIBE."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FETCHES
                and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute)
                and node.func.value.func.attr == "execute"
                and _statement_kind(node.func.value) not in {"DESCRIBE", "EXPLAIN"}):
            found.append(node.lineno)
    return found


def test_the_check_finds_a_streamed_read() -> None:
    assert streamed_reads('rows = con.execute("SELECT 1").fetchall()\n') == [1]
    assert streamed_reads('rows = con.execute(f"SELECT {x}", [1]).df()\n') == [1]
    assert streamed_reads('names = con.execute("DESCRIBE t").fetchall()\n') == []
    assert streamed_reads('rows = fetch(con, "SELECT 1").fetchall()\n') == []


def test_package_reads_rows_through_fetch_or_batches() -> None:
    offenders = []
    for folder in ("src/rfmlake", "glue_jobs", "lambdas"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in EXEMPT:
                continue
            offenders += [f"{name}:{line}" for line in streamed_reads(path.read_text())]
    assert not offenders, f"read through rfmlake.lake.duck.fetch or batches: {offenders}"
