"""Vectorized text formatting and the chunked file writers the generator uses.

All formatting works on whole numpy arrays (no per-row Python), so millions of rows format in seconds.
Writers append chunk after chunk and count rows per file, so memory stays bounded by one chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_TWO_DIGITS = np.array([f"{i:02d}" for i in range(100)])
_MONTHS = np.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])


def cat(*parts: Any) -> np.ndarray:
    """Element-wise string concatenation of arrays and scalars."""
    out = np.asarray(parts[0]).astype(str)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(str) if isinstance(part, np.ndarray) else str(part))
    return out


def padded(values: np.ndarray, width: int) -> np.ndarray:
    return np.strings.zfill(np.asarray(values, dtype=np.int64).astype(str), width)


def ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return cat(prefix, padded(numbers, width))


def money(cents: np.ndarray) -> np.ndarray:
    """Non-negative integer cents -> '12.34' (exact; no float rounding)."""
    cents = np.asarray(cents, dtype=np.int64)
    return cat((cents // 100).astype(str), ".", _TWO_DIGITS[cents % 100])


def iso_timestamps(epoch_s: np.ndarray, offset_min: np.ndarray, with_offset: np.ndarray) -> np.ndarray:
    """ISO 8601 strings: local clock time plus '+HH:MM' where with_offset, else the UTC time bare
    (the contract reads a timestamp without an offset as UTC)."""
    epoch_s = np.asarray(epoch_s, dtype=np.int64)
    offset_min = np.where(with_offset, offset_min, 0).astype(np.int64)
    local = (epoch_s + offset_min * 60).astype("datetime64[s]")
    text = np.datetime_as_string(local, unit="s")
    sign = np.where(offset_min < 0, "-", "+")
    magnitude = np.abs(offset_min)
    suffix = cat(sign, _TWO_DIGITS[magnitude // 60], ":", _TWO_DIGITS[magnitude % 60])
    return np.where(with_offset, cat(text, suffix), text)


def iso_utc_z(epoch_ms: np.ndarray) -> np.ndarray:
    """Clickstream style: milliseconds and a 'Z' suffix."""
    return cat(np.datetime_as_string(np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]"), unit="ms"), "Z")


def clf_timestamps(epoch_s: np.ndarray) -> np.ndarray:
    """Combined Log Format time: '10/Oct/2026:13:55:36 +0000'."""
    dt = np.asarray(epoch_s, dtype=np.int64).astype("datetime64[s]")
    days = dt.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month_index = months.astype(np.int64) % 12
    day_of_month = (days - months).astype(np.int64) + 1
    seconds = (dt - days).astype(np.int64)
    return cat(
        _TWO_DIGITS[day_of_month], "/", _MONTHS[month_index], "/", years.astype(str), ":",
        _TWO_DIGITS[seconds // 3600], ":", _TWO_DIGITS[(seconds // 60) % 60], ":", _TWO_DIGITS[seconds % 60],
        " +0000",
    )


def ipv4(rng: np.random.Generator, n: int) -> np.ndarray:
    octets = rng.integers(1, 255, size=(4, n))
    return cat(octets[0].astype(str), ".", octets[1].astype(str), ".", octets[2].astype(str), ".",
               octets[3].astype(str))


class FileCounter:
    """Rows written per file (paths relative to the output root), in the order files were created."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[str, int] = {}

    def add(self, path: Path, rows: int) -> None:
        key = path.relative_to(self.root).as_posix()
        self.rows[key] = self.rows.get(key, 0) + rows


def append_csv(path: Path, frame: pd.DataFrame, counter: FileCounter, *, header: bool | None = None) -> None:
    """Append rows; the header is written when the file is new (or when header=True)."""
    write_header = (not path.exists()) if header is None else header
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, mode="a", header=write_header, index=False, lineterminator="\n")
    counter.add(path, len(frame))


def append_raw_lines(path: Path, lines: list[str], counter: FileCounter) -> None:
    """Append lines verbatim (bad records that no writer would produce)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.writelines(line + "\n" for line in lines)
    counter.add(path, len(lines))


def jsonl_text(frame: pd.DataFrame) -> str:
    """JSON Lines for a frame; null for missing values, slashes unescaped (the data has no backslashes)."""
    if frame.empty:
        return ""
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    text = text.replace("\\/", "/")
    return text if text.endswith("\n") else text + "\n"


def append_jsonl(path: Path, frame: pd.DataFrame, counter: FileCounter) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(jsonl_text(frame))
    counter.add(path, len(frame))


class RollingParquetWriter:
    """Writes one table in parts of at most rows_per_file rows: <folder>/<stem>-00001.parquet, ..."""

    def __init__(self, folder: Path, stem: str, schema: pa.Schema, rows_per_file: int,
                 counter: FileCounter) -> None:
        self.folder = folder
        self.stem = stem
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.counter = counter
        self.part = 0
        self.rows_in_part = 0
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None

    @property
    def current_path(self) -> Path | None:
        return self._path

    def write(self, table: pa.Table) -> None:
        table = table.cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None or self.rows_in_part >= self.rows_per_file:
                self._roll()
            take = min(self.rows_per_file - self.rows_in_part, table.num_rows - offset)
            assert self._writer is not None and self._path is not None
            self._writer.write_table(table.slice(offset, take), row_group_size=1_000_000)
            self.counter.add(self._path, take)
            self.rows_in_part += take
            offset += take

    def _roll(self) -> None:
        self.close()
        self.part += 1
        self.rows_in_part = 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"{self.stem}-{self.part:05d}.parquet"
        self._writer = pq.ParquetWriter(self._path, self.schema, compression="snappy")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
