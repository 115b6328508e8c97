"""Analytics on the lake for people: saved queries (rfmlake.analytics.saved_queries)."""

from rfmlake.analytics.saved_queries import (
    SavedQuery,
    athena_sql,
    get_query,
    named_query_params,
    query_names,
    run_saved_query,
    saved_queries,
)

__all__ = [
    "SavedQuery", "athena_sql", "get_query", "named_query_params", "query_names", "run_saved_query", "saved_queries",
]
