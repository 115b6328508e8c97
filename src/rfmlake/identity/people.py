"""Clickstream events as people's events, for the consumers outside dbt that read silver.events
directly (the profile build, the recommendations stage). dbt's int_events__sessionized attributes
events the same way for the marts.

An event counts for the person of its customer id when signed in (that id's person's primary
customer id, the key of per-person gold: docs/adr/0020), else for the person the identity graph
joined its device to; a device that is no one's (alone, or shared by two people: docs/identity.md)
brings nothing. A customer id the graph does not hold is a person of its own.
"""

from __future__ import annotations


def person_events_query(where: str = "true", events: str = "silver.events", graph: str = "gold.identity_graph") -> str:
    """DuckDB SQL: the rows of `events` matching `where` (over its columns, aliased `ev`) that belong
    to a person, with every column of `events` and `person_customer_id`."""
    return f"""
        select ev.*, coalesce(ids.primary_customer_id, ev.customer_id, devices.primary_customer_id)
                     as person_customer_id
        from {events} as ev
        left join (select member_id, primary_customer_id from {graph} where member_kind = 'customer_id') as ids
          on ids.member_id = ev.customer_id
        left join (select member_id, primary_customer_id from {graph}
                   where member_kind = 'anonymous_id' and primary_customer_id is not null) as devices
          -- one equality (a device counts only for events signed in under no customer id): a condition
          -- on the left side alone made DuckDB fall back to a nested-loop join
          on devices.member_id = case when ev.customer_id is null then ev.anonymous_id end
        where ({where}) and coalesce(ev.customer_id, devices.primary_customer_id) is not null"""


__all__ = ["person_events_query"]
