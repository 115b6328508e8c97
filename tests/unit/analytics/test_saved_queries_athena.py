"""Saved queries compile for Athena: zones become the prefixed Glue databases, the SQL parses as
Trino, and the CreateNamedQuery requests infra deploys match botocore's Athena model."""

from __future__ import annotations

import re

import boto3
import pytest
import sqlglot
from botocore.stub import Stubber
from sqlglot import exp

from rfmlake.analytics import athena_sql, get_query, named_query_params, saved_queries
from rfmlake.errors import RfmlakeError

EXPECTED = {
    "segment_sizes_over_time", "segment_migration", "cohort_retention", "top_products_per_segment",
    "customers_at_risk_high_value",
}


def test_the_curated_set_is_there_with_titles() -> None:
    queries = saved_queries()
    assert {q.name for q in queries} == EXPECTED
    for query in queries:
        assert query.title and len(query.description) > 40
        assert query.tables, query.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_compiles_for_athena(name: str) -> None:
    sql = athena_sql(name, prefix="acme")
    assert "${" not in sql
    tree = sqlglot.parse_one(sql, read="trino")
    databases = {table.db for table in tree.find_all(exp.Table) if table.db}
    assert databases and databases <= {"acme_silver", "acme_gold"}, databases
    assert {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db} == {
        "acme_" + table for table in get_query(name).tables
    }
    # nothing DuckDB-only slipped in
    assert not re.search(r"::|\bQUALIFY\b|\bEXCLUDE\b|date_part\(|strftime\(", sql, re.IGNORECASE)


def test_local_render_uses_plain_zones() -> None:
    sql = get_query("cohort_retention").render("")
    assert "gold.fct_orders" in sql and "_gold" not in sql


def test_named_queries_match_the_athena_model() -> None:
    client = boto3.client("athena", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    params = named_query_params(prefix="acme", work_group="acme-analysts")
    assert len(params) == len(EXPECTED)
    with Stubber(client) as stubber:
        for request in params:
            stubber.add_response("create_named_query", {"NamedQueryId": "id"}, request)
            client.create_named_query(**request)  # the stubber validates every field against the model
        stubber.assert_no_pending_responses()
    assert {p["Database"] for p in params} == {"acme_gold"}
    assert all(p["Name"].startswith("acme-") for p in params)


def test_unknown_zone_in_a_query_file_is_refused() -> None:
    from rfmlake.analytics.saved_queries import _parse

    with pytest.raises(RfmlakeError, match="unknown zones"):
        _parse("bad", "-- title: t\n-- description: d\nSELECT * FROM ${platinum}.x")
    with pytest.raises(RfmlakeError, match="no description"):
        _parse("bad", "-- title: t\nSELECT 1")
