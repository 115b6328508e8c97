"""`rfmlake sql --as <persona>`: a column the persona may not read is unreachable by any query shape."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet.read_schema)
import pytest

from rfmlake.cli.main import main
from rfmlake.governance.local import connect_as, uncovered_columns
from rfmlake.governance.model import GovernanceConfig, load_governance
from rfmlake.lake import Lake

REPO_CONFIG = Path(__file__).resolve().parents[3] / "lakeformation"
CONFIG = load_governance(REPO_CONFIG)
PERSONAS = sorted(CONFIG.personas.personas)


def _marker(zone: str, table: str, column: str) -> str:
    return f"v::{zone}.{table}.{column}"


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """Every assigned table with every assigned column (plus an unclassified bronze extra), each
    cell a marker naming its column, so a leak shows up as a marker in some result."""
    lake = Lake(tmp_path_factory.mktemp("governed") / "lake")
    for zone, database in CONFIG.assignments.databases.items():
        for name, table in database.tables.items():
            columns = {c: [_marker(zone, name, c)] for c in table.columns}
            if zone == "bronze":
                columns["loyalty_tier"] = [_marker(zone, name, "loyalty_tier")]
            lake.write_arrow(zone, name, pa.table(columns))
    return lake


def _forbidden(config: GovernanceConfig, persona: str, lake: Lake) -> list[tuple[str, str, str]]:
    forbidden = []
    for ref in lake.tables():
        for column in pa.parquet.read_schema(next(ref.path.glob("*.parquet"))).names:
            if not config.can_select(persona, ref.zone, ref.name, column):
                forbidden.append((ref.zone, ref.name, column))
    return forbidden


def _all_cells(con: duckdb.DuckDBPyConnection) -> set[str]:
    cells: set[str] = set()
    for schema, table in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
        for row in con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall():
            cells |= {str(v) for v in row}
    return cells


def test_every_persona_is_denied_something_but_the_engineer(small_lake: Lake) -> None:
    assert not _forbidden(CONFIG, "data_engineer", small_lake)
    for persona in PERSONAS:
        if persona != "data_engineer":
            assert _forbidden(CONFIG, persona, small_lake), persona


@pytest.mark.parametrize("persona", PERSONAS)
def test_forbidden_columns_are_unreachable(persona: str, small_lake: Lake, tmp_path: Path) -> None:
    con = connect_as(small_lake, persona, CONFIG)
    forbidden = _forbidden(CONFIG, persona, small_lake)
    # SELECT * over everything the persona has: no forbidden value anywhere
    leaked = _all_cells(con) & {_marker(*f) for f in forbidden}
    assert not leaked, leaked
    # and every allowed column is there
    for ref in small_lake.tables():
        allowed = [c for c in pa.parquet.read_schema(next(ref.path.glob("*.parquet"))).names
                   if CONFIG.can_select(persona, ref.zone, ref.name, c)]
        if allowed:
            got = [d[0] for d in con.execute(f"SELECT * FROM {ref.qualified_name}").description]
            assert got == allowed
    for zone, table, column in forbidden:
        qualified = f"{zone}.{table}"
        file = next(small_lake.require(zone, table).path.glob("*.parquet"))
        shapes = [
            f'SELECT "{column}" FROM {qualified}',
            f'SELECT x."{column}" FROM (SELECT * FROM {qualified}) x',
            f'SELECT a."{column}" FROM {qualified} a JOIN {qualified} b ON true',
            f"SELECT * FROM read_parquet('{file}')",
            f"SELECT * FROM '{file}'",
            f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
            "SET enable_external_access = true",
        ]
        for sql in shapes:
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_persona_cannot_write_visible_data_anywhere(persona: str, small_lake: Lake, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Not into DuckDB's temp folder either (`.tmp` under the working folder, which external access
    off still allowed), by COPY, EXPORT DATABASE, or by pointing temp_directory elsewhere."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()  # as a connection that spilled once leaves it
    con = connect_as(small_lake, persona, CONFIG)
    table = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchone()[0]
    attempts = [
        f"COPY {table} TO '.tmp/out.csv'",
        f"COPY (SELECT * FROM {table}) TO '.tmp/out.parquet' (FORMAT parquet)",
        f"COPY {table} TO '{tmp_path / 'out.csv'}'",
        "EXPORT DATABASE '.tmp/export'",
        f"EXPORT DATABASE '{tmp_path / 'export'}'",
        f"SET temp_directory = '{tmp_path / 'spill'}'",
        f"PRAGMA temp_directory = '{tmp_path / 'spill'}'",
        "RESET temp_directory",
        "SET allowed_directories = ['/']",
        "CREATE PERSISTENT SECRET leak (TYPE s3, KEY_ID 'k', SECRET 's')",
        "SELECT * FROM glob('.tmp/*')",
    ]
    for sql in attempts:
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
    assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1  # the connection still works
    assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == ""
    con.close()
    assert [p.name for p in tmp_path.rglob("*")] == [".tmp"]  # nothing written anywhere


def test_unknown_persona_is_a_clear_error(small_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sql", "--lake", str(small_lake.root), "--as", "intern", "SELECT 1"])
    assert code == 1
    assert "unknown persona 'intern'; personas: analyst, data_engineer" in capsys.readouterr().err


def test_sql_as_persona_cli(small_lake: Lake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_LAKEFORMATION_DIR", str(REPO_CONFIG))
    assert main(["sql", "--lake", str(small_lake.root), "--as", "analyst", "--format", "csv",
                 "SELECT email_token FROM gold.dim_customers"]) == 0
    assert "v::gold.dim_customers.email_token" in capsys.readouterr().out
    assert main(["sql", "--lake", str(small_lake.root), "--as", "data_scientist",
                 "SELECT email_token FROM gold.dim_customers"]) == 1
    assert 'column "email_token" not found' in capsys.readouterr().err
    # without --as nothing changes: the raw bronze PII is there for the default connection
    assert main(["sql", "--lake", str(small_lake.root), "--format", "csv", "SELECT email FROM bronze.customers"]) == 0
    assert "v::bronze.customers.email" in capsys.readouterr().out


def test_coverage_check_finds_an_untagged_column(small_lake: Lake, tmp_path: Path) -> None:
    assert uncovered_columns(CONFIG, small_lake) == []
    lake = Lake(tmp_path / "lake")
    lake.write_arrow("gold", "dim_customers", pa.table({"customer_id": ["1"], "email": ["a@b.c"]}))
    assert uncovered_columns(CONFIG, lake) == ["gold.dim_customers.email"]
