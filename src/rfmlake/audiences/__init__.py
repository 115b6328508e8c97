"""Saved audiences (gold.audiences): filters over the customers, buyers and people who never bought,
built in the marketing app (rfmlake.app), resolved to members by activation and journeys."""

from rfmlake.audiences.model import AudienceError, AudienceFilters, audience_id, parse_filters
from rfmlake.audiences.query import AudienceSize, Facts, measure, member_query, where_sql
from rfmlake.audiences.store import SavedAudience, get_audience, load_audiences, resolve_members, save_audience

__all__ = ["AudienceError", "AudienceFilters", "AudienceSize", "Facts", "SavedAudience", "audience_id",
           "get_audience", "load_audiences", "measure", "member_query", "parse_filters", "resolve_members",
           "save_audience", "where_sql"]
