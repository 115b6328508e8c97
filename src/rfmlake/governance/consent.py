"""Consent: who marketing may reach. The rule (docs/governance.md): activation and every export
of customers start from `consented_customers`; a customer is included only with
gold.dim_customers.marketing_opt_in = true (null means unknown, which is not consent) and not on
the erasure suppression list."""

from __future__ import annotations

import duckdb

from rfmlake.errors import RfmlakeError
from rfmlake.lake.duck import fetch
from rfmlake.lake.tables import Lake, parquet_scan

CONSENT_TABLE = ("gold", "dim_customers")


def consented_customers(lake: Lake) -> set[str]:
    """Customer ids that agreed to marketing, from the lake's current gold.dim_customers."""
    from rfmlake.governance.erasure import suppressed_customer_tokens
    from rfmlake.governance.tokens import customer_id_token, lake_key

    ref = lake.current(*CONSENT_TABLE)
    if ref is None:
        raise RfmlakeError(f"gold.dim_customers does not exist in the lake at {lake}; run the pipeline first")
    con = duckdb.connect(":memory:")
    rows = fetch(con,
        f"SELECT DISTINCT customer_id FROM {parquet_scan(ref)} "
        "WHERE marketing_opt_in IS TRUE AND customer_id IS NOT NULL"
    ).fetchall()
    suppressed = suppressed_customer_tokens(lake)
    if not suppressed:
        return {r[0] for r in rows}
    key = lake_key(lake)
    return {r[0] for r in rows if customer_id_token(r[0], key) not in suppressed}


def only_consented(lake: Lake, customer_ids: list[str]) -> list[str]:
    """The ids, in order, that may be contacted; a convenience for export code."""
    allowed = consented_customers(lake)
    return [c for c in customer_ids if c in allowed]
