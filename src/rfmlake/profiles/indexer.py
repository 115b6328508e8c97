"""Index gold.customer_profile into a profile store: build the table, load a new generation,
switch readers to it atomically, drop old generations."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rfmlake.lake import Lake
from rfmlake.profiles.build import PROFILE_TABLE, iter_documents, write_profile_table
from rfmlake.profiles.embedded import EmbeddedProfileStore
from rfmlake.profiles.store import ProfileStore

log = logging.getLogger(__name__)


def new_generation_id() -> str:
    # Sortable by time, lower case (OpenSearch index names must be).
    return f"g{datetime.now(UTC):%Y%m%d%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def embedded_store(lake: Lake) -> EmbeddedProfileStore:
    return EmbeddedProfileStore(lake.system_dir / "profiles")


@dataclass(frozen=True)
class IndexReport:
    generation: str
    profiles: int
    source_version: str
    removed_generations: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def index_table(table: pa.Table, store: ProfileStore, *, source_version: str, keep: int = 2,
                generation: str | None = None) -> IndexReport:
    generation = generation or new_generation_id()
    count = store.load_generation(iter_documents(table), generation)
    store.activate(generation)
    removed = store.cleanup(keep=keep)
    log.info("indexed %d profiles into generation %s (source %s)", count, generation, source_version)
    return IndexReport(generation, count, source_version, tuple(removed))


def index_profiles(
    lake: Lake, store: ProfileStore | None = None, *, rebuild: bool = True, keep: int = 2
) -> IndexReport:
    """Build gold.customer_profile from the current gold tables (unless rebuild is False and it
    exists) and index it; the embedded store under the lake by default."""
    ref = lake.current("gold", PROFILE_TABLE)
    if rebuild or ref is None:
        ref = write_profile_table(lake)
    return index_table(pq.read_table(ref.path), store or embedded_store(lake), source_version=ref.path.name, keep=keep)


def index_parquet(path: str | Path, store: ProfileStore, *, keep: int = 2, filesystem: Any = None,
                  generation: str | None = None) -> IndexReport:
    """Index a committed version folder of gold.customer_profile (local path, s3:// URI, or a path
    on `filesystem`)."""
    table = pq.read_table(str(path), filesystem=filesystem)
    return index_table(table, store, source_version=Path(str(path)).name, keep=keep, generation=generation)
