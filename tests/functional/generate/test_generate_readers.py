"""Generated landing files read by the engines the pipeline uses: Spark (bronze) and DuckDB (local SQL)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from rfmlake.contract import ENTITIES
from rfmlake.generate import MANIFEST_NAME, generate_landing


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing") / "in"
    generate_landing(out, order_lines=2_000, seed=21, bad_rows=True)
    return out


@pytest.mark.spark
def test_spark_reads_every_entity_with_the_manifest_row_counts(spark, landing: Path) -> None:
    files = json.loads((landing / MANIFEST_NAME).read_text())["files"]
    expected: dict[tuple[str, str], int] = {}
    for relative, rows in files.items():
        entity, name = relative.split("/")
        key = (entity, name.rsplit(".", 1)[1])
        expected[key] = expected.get(key, 0) + rows
    for (entity, suffix), rows in sorted(expected.items()):
        path = str(landing / entity / f"*.{suffix}")
        if suffix == "parquet":
            frame = spark.read.parquet(path)
        elif suffix == "jsonl":
            frame = spark.read.option("mode", "PERMISSIVE").json(path)
        elif suffix == "csv":
            frame = spark.read.option("header", True).option("mode", "PERMISSIVE").csv(path)
        else:
            frame = spark.read.text(path)
        assert frame.count() == rows, (entity, suffix)
        columns = {c.lower() for c in frame.columns}
        assert {c.lower() for c in ENTITIES[entity].required} <= columns | {"value"}, (entity, suffix)


@pytest.mark.spark
@pytest.mark.parametrize("entity", ["events", "orders"])
def test_spark_flags_the_malformed_json_lines(spark, landing: Path, entity: str) -> None:
    manifest = json.loads((landing / MANIFEST_NAME).read_text())
    # Spark refuses queries on raw JSON that touch only the corrupt-record column unless cached.
    frame = spark.read.option("mode", "PERMISSIVE").json(str(landing / entity / "*.jsonl")).cache()
    corrupt = frame.filter(frame["_corrupt_record"].isNotNull()).count()
    frame.unpersist()
    assert corrupt == manifest["injected_bad_rows"][entity]["malformed_record"]


def test_duckdb_joins_headers_and_lines_to_the_same_totals(landing: Path) -> None:
    con = duckdb.connect()
    mismatches = con.sql(f"""
        with lines as (
            select order_id, sum(round(quantity * unit_price::decimal(18,4) - coalesce(discount, 0)::decimal(18,2), 2)) s
            -- distinct: the injected exact duplicates must not count twice
            from (select distinct * from read_parquet('{landing}/order_items/*.parquet'))
            -- the rows the generator plants as bad (negative or over-the-line discounts) are not sales
            where order_id is not null and quantity > 0 and unit_price >= 0
              and coalesce(discount, 0) between 0 and quantity * unit_price
            group by all),
        headers as (
            select order_id, try_cast(order_total as decimal(18,2)) t
            from read_csv('{landing}/orders/*.csv', all_varchar = true, ignore_errors = true)
            union all
            select order_id, order_total::decimal(18,2)
            from read_json('{landing}/orders/*.jsonl', ignore_errors = true, format = 'newline_delimited'))
        select count(*) from lines join (select distinct order_id, t from headers) h using (order_id)
        where h.t <> lines.s
    """).fetchone()
    assert mismatches == (0,)
