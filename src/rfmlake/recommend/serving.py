"""Reading gold.product_recommendations: for journeys (template variables) and the profile."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch

ITEM_FIELDS = ("rank", "product_id", "product_name", "category", "brand", "score", "source")
TABLE = "product_recommendations"


def recommendations_for(lake: Lake, customer_ids: Iterable[str], n: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Each customer's top `n` recommendations, best first, as dicts with rank, product_id,
    product_name, category, brand, score and source: what a journey hands its message template as a
    variable. The list is the person's: any customer id of a person (docs/identity.md) gets the list
    of their primary id. Every asked customer is a key; a customer without recommendations (unknown,
    or the table is absent or empty) maps to []. Ask for the customers of one send together: one query."""
    if isinstance(customer_ids, str):
        raise TypeError("customer_ids must be a collection of ids, not one string")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RfmlakeError(f"n must be a whole number >= 1, got {n!r}")
    wanted = list(dict.fromkeys(str(c) for c in customer_ids))
    result: dict[str, list[dict[str, Any]]] = {c: [] for c in wanted}
    if not wanted or lake.current("gold", TABLE) is None:
        return result
    # A person's list is keyed by their primary customer id (docs/identity.md): any of their customer
    # ids finds it through the identity graph; an id the graph does not hold stands for itself.
    has_graph = lake.current("gold", "identity_graph") is not None
    person = "coalesce(g.primary_customer_id, w.customer_id)" if has_graph else "w.customer_id"
    graph = ("left join gold.identity_graph as g on g.member_kind = 'customer_id' and g.member_id = w.customer_id"
             if has_graph else "")
    con = connect(lake, zones=("gold",))
    try:
        con.register("wanted", pa.table({"customer_id": pa.array(wanted, pa.string())}))
        rows = fetch(con,
            f"select w.customer_id, {', '.join('r.' + f for f in ITEM_FIELDS)} "
            f"from wanted as w {graph} join gold.{TABLE} as r on r.customer_id = {person} where r.rank <= ? "
            "order by w.customer_id, r.rank", [n]).fetchall()
    finally:
        con.close()
    for customer, *values in rows:
        result[customer].append(dict(zip(ITEM_FIELDS, values, strict=True)))
    return result
