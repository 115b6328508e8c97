"""Pair scores kept from the run before: a pair of CRM records is scored again only when one of its
records changed or the pair was not compared before (docs/identity.md, "Scoring only what changed").

A pair's score depends on its two records and the model alone (the model has no term-frequency
tables), so a pair the last run scored with the same model, whose records are unchanged, scores the
same: if it reached the review threshold it is in the current gold.identity_matches, else it would
not reach it now. What the last run compared is known from a state file written beside that
version of gold.identity_matches: per record its silver `_row_hash` (the accepted CRM row) and
whether its size-limited blocks (`postal_block`, `name_city_block`, nulled past
identity.max_block_size) were set. A pair of unchanged records sharing a block that was set for
both was compared then; any other pair is scored now, by the same blocking rules restricted to
such pairs. The pairs kept from before are those still blocked now.

The state holds customer ids and row hashes, no values; it is named after the gold.identity_matches
version it belongs to, so a run that failed (its version never became current), an erasure (which
rewrites the table and deletes the state) or a new model, threshold or block size makes the next
run score every pair.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from rfmlake.identity.matching import FIELDS, PREDICTION_BLOCKS
from rfmlake.ingest.engine import Engine
from rfmlake.lake import Lake

STATE_DIR: tuple[str, ...] = ("models", "identity", "scored")
# The blocks records_query sets only where few records share them: whether a pair of unchanged
# records was compared before depends on whether these were set for both then.
SIZE_LIMITED_BLOCKS: tuple[str, ...] = ("postal_block", "name_city_block")
PAIR_COLUMNS: tuple[str, ...] = ("unique_id_l", "unique_id_r", "match_probability", "match_weight",
                                 *(f"mw_{f}" for f in FIELDS))


def scoring_key(model_version: str, review_threshold: float, records_sql: str) -> str:
    """What must not change for kept scores to stand: the model, the review threshold (a lower one
    keeps pairs the last run dropped), the records' normalisation and blocks, the blocking rules."""
    text = json.dumps([model_version, float(review_threshold), records_sql, list(PREDICTION_BLOCKS)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _state_name(matches_version: str, key: str) -> str:
    return f"{matches_version}-{key}.parquet"


def rescoring_blocks() -> list[str]:
    """PREDICTION_BLOCKS restricted to the pairs not compared before (id_rescore's columns)."""
    changed = "(l.rescore OR r.rescore)"
    blocks = []
    for rule in PREDICTION_BLOCKS:
        limited = [c for c in SIZE_LIMITED_BLOCKS if f"l.{c}" in rule]
        condition = changed if not limited else \
            f"({changed} OR NOT ({' AND '.join(f'l.was_{c} AND r.was_{c}' for c in limited)}))"
        blocks.append(f"{rule} AND {condition}")
    return blocks


def load_previous(lake: Lake, engine: Engine, key: str) -> bool:
    """Create `id_scored_before` (unique_id, record_hash, was_<block>...) and `id_matches_before`
    from the state of the current gold.identity_matches version, when it was written with `key`;
    False (and nothing created) when there is none to use. DuckDB only."""
    from rfmlake.lake.tables import parquet_scan

    ref = lake.current("gold", "identity_matches")
    if engine.name != "duckdb" or ref is None:
        return False
    data = lake.read_system(*STATE_DIR, _state_name(ref.version, key))
    if data is None:
        return False
    with tempfile.TemporaryDirectory(prefix="rfmlake-identity-") as folder:
        path = Path(folder) / "scored.parquet"
        path.write_bytes(data)
        engine.create("id_scored_before", f"SELECT * FROM read_parquet('{_sql_text(str(path))}')")
    weights = ", ".join(f"CAST({f}_weight AS DOUBLE) AS mw_{f}" for f in FIELDS)
    engine.create("id_matches_before", f"""
        SELECT customer_id_l AS unique_id_l, customer_id_r AS unique_id_r,
               CAST(match_probability AS DOUBLE) AS match_probability, CAST(match_weight AS DOUBLE) AS match_weight,
               {weights}, model_version
        FROM {parquet_scan(ref)}""")
    return True


def mark_records(engine: Engine) -> int:
    """`id_rescore`: id_records with `rescore` (new, or its accepted CRM row changed) and, per
    size-limited block, `was_<block>` (set for it on the last run). Returns the records to rescore."""
    was = ", ".join(f"coalesce(b.was_{c}, false) AS was_{c}" for c in SIZE_LIMITED_BLOCKS)
    engine.create("id_rescore", f"""
        SELECT r.*, b.unique_id IS NULL OR b.record_hash IS DISTINCT FROM s._row_hash AS rescore, {was}
        FROM id_records r
        LEFT JOIN id_silver_customers s ON s.customer_id = r.unique_id
        LEFT JOIN id_scored_before b ON b.unique_id = r.unique_id""")
    return int(engine.rows("SELECT count(*) AS n FROM id_rescore WHERE rescore")[0]["n"])


def kept_pairs_query(scored: str, model_version: str) -> str:
    """The pairs kept from the last run: same model, both records unchanged, still blocked now (a
    block grown past the size limit compares its records no more), and not scored again now."""
    blocked = " OR ".join(f"({rule})" for rule in PREDICTION_BLOCKS)
    columns = ", ".join(f"m.{c}" for c in PAIR_COLUMNS)
    return f"""
        SELECT {columns}
        FROM id_matches_before m
        JOIN id_rescore l ON l.unique_id = m.unique_id_l AND NOT l.rescore
        JOIN id_rescore r ON r.unique_id = m.unique_id_r AND NOT r.rescore
        WHERE m.model_version = '{_sql_text(model_version)}' AND ({blocked})
          AND NOT EXISTS (SELECT 1 FROM {scored} s
                          WHERE s.unique_id_l = m.unique_id_l AND s.unique_id_r = m.unique_id_r)"""


def write_state(lake: Lake, engine: Engine, matches_version: str, key: str, keep: str | None) -> None:
    """The records this run compared, for the next run, named after the gold.identity_matches
    version it committed; the states of other versions but `keep` (the version before, which the
    run's rollback would make current again) are deleted."""
    if engine.name != "duckdb":
        return
    was = ", ".join(f"r.{c} IS NOT NULL AS was_{c}" for c in SIZE_LIMITED_BLOCKS)
    with tempfile.TemporaryDirectory(prefix="rfmlake-identity-") as folder:
        engine.write(f"""SELECT r.unique_id, s._row_hash AS record_hash, {was}
                         FROM id_records r JOIN id_silver_customers s ON s.customer_id = r.unique_id
                         ORDER BY r.unique_id""", folder)
        lake.write_system((Path(folder) / "part-00000.parquet").read_bytes(), *STATE_DIR,
                          _state_name(matches_version, key))
    keep_prefixes = tuple(f"{v}-" for v in (matches_version, keep) if v)
    for name in _state_files(lake):
        if not name.startswith(keep_prefixes):
            lake.storage.delete_file(lake.system_uri(*STATE_DIR, name))


def forget(lake: Lake) -> int:
    """Delete every kept state (erasure: they hold customer ids); the next run scores every pair."""
    names = _state_files(lake)
    for name in names:
        lake.storage.delete_file(lake.system_uri(*STATE_DIR, name))
    return len(names)


def _state_files(lake: Lake) -> list[str]:
    return [name for name, is_dir in lake.storage.children(lake.system_uri(*STATE_DIR))
            if not is_dir and name.endswith(".parquet")]


def _sql_text(text: str) -> str:
    return text.replace("'", "''")
