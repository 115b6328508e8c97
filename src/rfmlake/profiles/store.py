"""The profile store interface shared by the embedded (SQLite) and OpenSearch adapters.

A store holds generations: `load_generation` fills a new one that readers cannot see yet (or
`update_generation` derives one from the active generation and a set of changes),
`activate` makes it the one every read uses (atomically: a pointer file rename, an alias swap),
`cleanup` drops the others. Reads always go to the active generation.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from rfmlake.errors import RfmlakeError

# Fields a query can bound with a [min, max] range.
RANGE_FIELDS: tuple[str, ...] = ("r_score", "f_score", "m_score", "recency_days", "frequency", "monetary")
# Fields a text query searches (names are tokenized: only what exists in clear is searchable).
TEXT_FIELDS: tuple[str, ...] = ("city", "country_code", "rfm_segment", "cluster_label")
MAX_PAGE_SIZE = 500


class ProfileStoreError(RfmlakeError):
    """The profile store is unusable (no active generation, backend failure)."""


class InvalidQueryError(RfmlakeError):
    """A query parameter is invalid (unknown range field, bad cursor, page size)."""


class ProfileDocument(NamedTuple):
    """A profile document as the stores write it: the fields they index or key on, and the whole
    document as JSON text, encoded once (by the indexer straight from the profile table's Arrow
    batches, rfmlake.profiles.build.encode_documents; from a dict by `from_dict`). A store writes
    `json_text` as it is: the SQLite `doc` column, the OpenSearch bulk `_source`.

    `secondary_ids` are the person's other customer ids (`customer_ids` without the primary one;
    empty for most people): the stores' member-id lookup is filled from them as documents are
    written, so a secondary id finds its person without reading the stored documents again.
    `secondary_email_tokens` are the person's other email tokens (the emails of their secondary
    customer ids that differ from `email_token`; empty for most people): `find_by_email_token`
    matches them too. They are a lookup key only, never part of `json_text` (the document the API
    serves).

    A NamedTuple rather than a dataclass: the indexer makes one per profile, and building a tuple
    costs a fraction of a dataclass's __init__."""

    customer_id: str
    email_token: str | None
    city: str | None
    country_code: str | None
    rfm_segment: str | None
    cluster_label: str | None
    r_score: int | None
    f_score: int | None
    m_score: int | None
    recency_days: int | None
    frequency: int | None
    monetary: float | None
    secondary_ids: tuple[str, ...]
    secondary_email_tokens: tuple[str, ...]
    json_text: str

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ProfileDocument:
        """A plain document; its optional `email_tokens` (every email token of the person, as the
        profile table's `email_tokens_json`) is taken out of it as the lookup key it is."""
        email_tokens = doc.get(EMAIL_TOKENS_KEY)
        if EMAIL_TOKENS_KEY in doc:
            doc = {k: v for k, v in doc.items() if k != EMAIL_TOKENS_KEY}
        return cls(doc["customer_id"], *(doc.get(name) for name in INDEXED_FIELDS[1:]),
                   secondary_ids=secondary_ids_of(doc["customer_id"], doc.get("customer_ids")),
                   secondary_email_tokens=secondary_ids_of(doc.get("email_token"), email_tokens),
                   json_text=json.dumps(doc, separators=(",", ":")))


# The document fields a ProfileDocument carries beside its lookup keys and JSON text, in its order.
INDEXED_FIELDS: tuple[str, ...] = ProfileDocument._fields[:-3]
# The key of a plain document's list of the person's email tokens (ProfileDocument.from_dict).
EMAIL_TOKENS_KEY = "email_tokens"


def secondary_ids_of(primary: str | None, values: Any) -> tuple[str, ...]:
    """The secondary members of a list: a profile's `customer_ids` but the primary one (the
    profile's `customer_id`), or the person's email tokens but the primary record's `email_token`;
    in their order, each once; none when `values` is not a list."""
    if not isinstance(values, list):
        return ()
    return tuple(dict.fromkeys(i for i in values if isinstance(i, str) and i != primary))
# What the stores accept: documents the indexer encoded, or plain dicts (tests, the erasure path).
DocumentInput = ProfileDocument | dict[str, Any]


def as_profile_document(doc: DocumentInput) -> ProfileDocument:
    return doc if isinstance(doc, ProfileDocument) else ProfileDocument.from_dict(doc)


@dataclass(frozen=True)
class ProfileQuery:
    segment: str | None = None
    cluster_label: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    text: str | None = None
    limit: int = 50
    cursor: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ranges) - set(RANGE_FIELDS))
        if unknown:
            raise InvalidQueryError(f"cannot filter on {unknown}; range fields are {list(RANGE_FIELDS)}")
        for name, (low, high) in self.ranges.items():
            if low is not None and high is not None and low > high:
                raise InvalidQueryError(f"{name}: min {low} is greater than max {high}")
        if not 1 <= self.limit <= MAX_PAGE_SIZE:
            raise InvalidQueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {self.limit}")
        if self.cursor is not None:
            decode_cursor(self.cursor)
        if self.text is not None and not self.text.strip():
            raise InvalidQueryError("text must not be blank")

    @property
    def after(self) -> str | None:
        return decode_cursor(self.cursor) if self.cursor else None


@dataclass(frozen=True)
class ProfilePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class SegmentCount:
    name: str
    customers: int


def encode_cursor(customer_id: str) -> str:
    """An opaque keyset cursor: the last customer_id of a page (pages are ordered by customer_id)."""
    raw = json.dumps({"after": customer_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidQueryError("cursor is not one this API returned") from None


def page_from(rows: list[dict[str, Any]], limit: int) -> ProfilePage:
    """Rows fetched with limit + 1: the extra row only tells that a next page exists."""
    items = rows[:limit]
    more = len(rows) > limit
    return ProfilePage(items, encode_cursor(items[-1]["customer_id"]) if more and items else None)


@runtime_checkable
class ProfileStore(Protocol):
    def load_generation(self, documents: Iterable[DocumentInput], generation: str, source: str | None = None) -> int:
        """Write every document into a new, not yet visible generation; returns the count. `source`
        (the table version the documents come from) is recorded with it."""
        ...

    def update_generation(self, upserts: Iterable[DocumentInput], deletes: Iterable[str], generation: str,
                          source: str | None = None) -> int:
        """A new, not yet visible generation: the active one with `upserts` written (replacing
        documents of the same customer_id) and the customers in `deletes` removed; returns the
        number of changes."""
        ...

    def source_of(self, generation: str) -> str | None:
        """The `source` a generation was loaded or updated with, if any."""
        ...

    def activate(self, generation: str) -> None:
        """Make `generation` the one every read uses, atomically."""
        ...

    def active_generation(self) -> str | None: ...

    def generations(self) -> list[str]: ...

    def cleanup(self, keep: int = 1) -> list[str]:
        """Delete generations other than the active one and the newest `keep - 1` others."""
        ...

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """The profile document of this primary customer id, without its recommendations; None for
        any other id (a secondary id: `primary_id` resolves it)."""
        ...

    def primary_id(self, customer_id: str) -> str | None:
        """The primary customer id of the person this customer id belongs to: itself for a primary
        id, the person's for a secondary one (the member-id lookup); None for an id no profile holds."""
        ...

    def recommendations(self, customer_id: str) -> list[dict[str, Any]] | None:
        """The recommendations of this primary customer id, best first ([] when they have none); None
        for any other id."""
        ...

    def find_by_email_token(self, email_token: str) -> dict[str, Any] | None:
        """The profile of the person one of whose customer ids has this email token (the primary
        record's `email_token` or a secondary one's); the lowest primary id when several do."""
        ...

    def search(self, query: ProfileQuery) -> ProfilePage: ...

    def segments(self) -> list[SegmentCount]: ...

    def close(self) -> None: ...


def stale_generations(all_generations: list[str], active: str | None, keep: int) -> list[str]:
    """Generations to delete: never the active one; the newest `keep - 1` others survive.
    Generations newer than the active one are left alone (a loader may be filling one)."""
    if keep < 1:
        raise InvalidQueryError(f"keep must be >= 1, got {keep}")
    older = sorted(g for g in all_generations if active is None or g < active)
    if active is None:
        return []
    return older[: max(0, len(older) - (keep - 1))]
