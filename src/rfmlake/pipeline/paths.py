"""Where a run may put its lake: checked before anything is read or written.

The lake may not be the landing folder, lie inside it or hold it: the lake's folders (bronze/,
silver/, gold/) would be read as landing entities by the next run, and landing files would sit among
the lake's tables. And its path may not hold characters that DuckDB and dbt read as something else
than a name: glob patterns (`* ? [ ]`, and `\\` escapes them) make the lake's own files unfindable,
`=` in a folder name becomes a hive partition column of every partitioned table, `?` and `#` cut the
dbt database's path short.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from rfmlake.errors import ConfigError
from rfmlake.lake.storage import S3_SCHEME, Storage, is_s3

_SPECIAL = re.compile(r"[*?\[\]\\=#\x00-\x1f\x7f]")


def check_run_paths(landing: str | Path, lake: str | Path) -> None:
    """Raise ConfigError naming `--lake` when the lake cannot live there."""
    _check_lake_characters(lake)
    _check_lake_apart(landing, lake)


def _check_lake_characters(lake: str | Path) -> None:
    location = Storage.normalize(lake) if is_s3(lake) else str(Path(lake).expanduser().resolve())
    found = sorted(set(_SPECIAL.findall(location.removeprefix(S3_SCHEME))))
    if found:
        shown = " ".join(repr(c)[1:-1] for c in found)
        raise ConfigError(f"--lake {location} has characters DuckDB and dbt read as patterns, not names ({shown}): "
                          "choose a lake folder whose path has none of * ? [ ] \\ = # or control characters")


def _check_lake_apart(landing: str | Path, lake: str | Path) -> None:
    if is_s3(landing) != is_s3(lake):
        return
    if is_s3(landing):
        inside = PurePosixPath(Storage.normalize(landing).removeprefix(S3_SCHEME))
        holder = PurePosixPath(Storage.normalize(lake).removeprefix(S3_SCHEME))
    else:
        inside, holder = Path(landing).expanduser().resolve(), Path(lake).expanduser().resolve()
    how = ("is the landing folder" if inside == holder else "is inside the landing folder"
           if holder.is_relative_to(inside) else "holds the landing folder" if inside.is_relative_to(holder) else None)
    if how:
        raise ConfigError(
            f"--lake {lake} {how} --input {landing}: give the lake a folder of its own, outside the landing "
            "folder (e.g. beside it); else the next run would read the lake's folders as landing files")
