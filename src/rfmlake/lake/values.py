"""Lake values as the plain Python scalars JSON holds: one conversion for the documents the profile
stores serve (rfmlake.profiles.build) and the member attributes destinations receive
(rfmlake.activation). A decimal becomes a float, a date or timestamp its isoformat text, anything
else unknown its text; None, booleans, numbers and text stay as they are.

`jsonable_column` converts a whole Arrow column at once, by its type: the same values as `jsonable`
of each element, without a Python Decimal or datetime per value where Arrow can do the work.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def jsonable_column(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """jsonable of every value of a column, converted per column by its Arrow type."""
    kind = column.type
    if pa.types.is_decimal(kind):
        # float(Decimal) is float(str(Decimal)): the same float from Arrow's text, without a Decimal each
        return [None if v is None else float(v) for v in pc.cast(column, pa.string()).to_pylist()]
    values = column.to_pylist()
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
            or pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return values
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return [None if v is None else v.isoformat() for v in values]
    return [jsonable(v) for v in values]
