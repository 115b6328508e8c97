"""The landing contract (v1): entities, their columns, and the silver schemas they conform to."""

from rfmlake.contract.entities import (
    ENTITIES,
    LANDING_FORMATS,
    ORDER_STATUSES,
    SILVER_TABLES,
    Column,
    Entity,
    QuarantineReason,
    entity,
)

__all__ = [
    "ENTITIES",
    "LANDING_FORMATS",
    "ORDER_STATUSES",
    "SILVER_TABLES",
    "Column",
    "Entity",
    "QuarantineReason",
    "entity",
]
