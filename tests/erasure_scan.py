"""What erasure tests look for after an erasure: a person's id, email, phone and name, in every file
or object version, read every way it holds data (Parquet decoded, DuckDB databases opened, anything
else byte for byte as text, which also finds rows SQLite freed but did not overwrite).

A needle is a word (matched case-insensitively as a whole word: customer C12 is not inside C123),
or a tuple of words that must all appear in one record (a row, a line): a name is first and last
name together, since either alone is someone else's too."""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

Needle = str | tuple[str, ...]

_PARQUET = b"PAR1"
_DUCKDB = b"DUCK"  # at offset 8


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(text.strip().lower())}(?![A-Za-z0-9])")


def _records(data: bytes) -> Iterator[str]:
    """The records a file holds, as lower-case text: Parquet rows, DuckDB rows, else lines."""
    if data[:4] == _PARQUET and data[-4:] == _PARQUET:
        import pyarrow.parquet as pq

        for row in pq.read_table(io.BytesIO(data)).to_pylist():
            yield "\t".join(str(v) for v in row.values()).lower()
        return
    if data[8:12] == _DUCKDB:
        import duckdb

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "copy.duckdb"
            path.write_bytes(data)
            con = duckdb.connect(str(path), read_only=True)
            try:
                for schema, table in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall():
                    for row in con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall():
                        yield "\t".join(str(v) for v in row).lower()
            finally:
                con.close()
        return
    yield from data.decode("utf-8", errors="replace").lower().splitlines()


def mentions(data: bytes, needles: Iterable[Needle]) -> list[Needle]:
    """The needles the bytes of one file hold."""
    compiled = [(n, [_word(w) for w in ((n,) if isinstance(n, str) else n)]) for n in needles]
    found: list[Needle] = []
    for record in _records(data):
        for needle, words in compiled:
            if needle not in found and all(w.search(record) for w in words):
                found.append(needle)
    return found


def files_mentioning(root: Path, needles: Iterable[Needle]) -> list[str]:
    """Every file under `root` (every version still on disk, not only the current ones) that holds
    one of the needles; paths relative to `root`."""
    needles = list(needles)
    return [path.relative_to(root).as_posix() for path in sorted(root.rglob("*"))
            if path.is_file() and mentions(path.read_bytes(), needles)]


def s3_versions_mentioning(client: object, bucket: str, needles: Iterable[Needle]) -> list[str]:
    """Every version of every object in the bucket (noncurrent ones included) that holds one of
    the needles, as "key@version"."""
    needles = list(needles)
    hits = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):  # type: ignore[attr-defined]
        for version in page.get("Versions", []):
            body = client.get_object(Bucket=bucket, Key=version["Key"],  # type: ignore[attr-defined]
                                     VersionId=version["VersionId"])["Body"].read()
            if mentions(body, needles):
                hits.append(f"{version['Key']}@{version['VersionId']}")
    return hits


def person_needles(customer_id: str, emails: Iterable[str], phones: Iterable[str],
                   names: Iterable[tuple[str, str]]) -> list[Needle]:
    """The needles for a person, in the raw forms the landing had them."""
    return [customer_id, *{e.strip() for e in emails if e}, *{p.strip() for p in phones if p},
            *{(first.strip(), last.strip()) for first, last in names if first and last}]


def pick_person(con: object, landing: Path) -> dict[str, object]:
    """A consented customer with orders, events, an email and a phone whose name identifies them:
    every landing line that holds their first and last name also holds their id or an email of
    theirs (else the name scan would find a namesake). Returns customer_id, email (as landed), and
    the needles for every raw form their CRM records had."""
    candidates = con.execute("""
        SELECT c.customer_id
        FROM silver.customers c
        WHERE c.customer_id IN (SELECT customer_id FROM silver.orders)
          AND c.customer_id IN (SELECT customer_id FROM silver.events)
          AND c.customer_id IN (SELECT trim(customer_id) FROM bronze.customers
                                WHERE email LIKE '%@%' AND phone IS NOT NULL AND first_name IS NOT NULL)
        ORDER BY c.marketing_opt_in IS TRUE DESC, c.customer_id""").fetchall()  # type: ignore[attr-defined]
    lines = [line.lower() for path in sorted(landing.rglob("*")) if path.is_file() and not path.name.startswith("_")
             for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()]
    for (customer_id,) in candidates:
        rows = con.execute("SELECT email, phone, first_name, last_name FROM bronze.customers "  # type: ignore[attr-defined]
                           "WHERE trim(customer_id) = ?", [customer_id]).fetchall()
        emails = [r[0] for r in rows if r[0] and "@" in r[0]]
        own = [_word(customer_id), *(_word(e) for e in emails)]
        names = [(r[2], r[3]) for r in rows if r[2] and r[3]]
        named = [line for line in lines if any(all(_word(w).search(line) for w in name) for name in names)]
        if emails and names and all(any(w.search(line) for w in own) for line in named):
            return {"customer_id": customer_id, "email": emails[0],
                    "needles": person_needles(customer_id, emails, [r[1] for r in rows if r[1]], names)}
    raise AssertionError("no customer in the generated landing has a name only they carry")
