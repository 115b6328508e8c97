"""A local working copy of a lake on S3, for the stages that run in one process (quality checks,
segmentation, customer value, profiles, activation) on Lambda or in a SageMaker processing job.

The stage code is the same code `rfmlake run` executes: it reads and writes a local lake. Around
it, `workspace` pulls the committed versions of the tables the stage reads, and the lake-internal
state it keeps (model store, activation journal, run reports), into a temporary folder; when the
stage succeeds it uploads every new version under the same version id and commits each one on S3
(Glue location, then pointer), and mirrors the state folders back. A stage that fails publishes
nothing, so the lake on S3 never shows a half-done stage. SageMaker's own ProcessingInput/Output
copies work the same way; doing it here keeps one mechanism for Lambda and SageMaker.

Tables a stage reads `in_place` are not copied: the workspace lake resolves them to their
committed versions on S3 and the stage scans them there with DuckDB (rfmlake.lake.duck), which
streams by row group. That is how stages read tables that grow with the data (the membership
history, bronze and silver customers) without copying them into a Lambda's /tmp.

A partitioned table is published partition by partition: the partitions the stage wrote are added
or replaced on S3, and only partitions it held in the workspace and dropped are dropped, so a stage
that appends one partition to a table it read in place (or did not read) leaves the others alone.

Spark stages do not use this: on Glue they read and write s3:// directly.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rfmlake.errors import PipelineError
from rfmlake.lake.storage import Storage, is_s3
from rfmlake.lake.tables import ZONES, Lake, TableRef

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

PII_FINGERPRINT = "pii_key.fingerprint"  # rfmlake.ingest.pii keeps it under _system/


class WorkspaceError(PipelineError):
    """A stage in a workspace did what its declaration does not allow; nothing was published."""


@dataclass
class SyncReport:
    pulled: dict[str, str] = field(default_factory=dict)     # qualified table -> version
    pushed: dict[str, str] = field(default_factory=dict)     # qualified table -> new version
    state_files_up: int = 0
    state_files_removed: int = 0
    export_files_up: int = 0
    bytes_down: int = 0


def table_matches(qualified: str, patterns: Sequence[str]) -> bool:
    """Whether "zone.table" matches one of the patterns ("gold.*", "bronze.customers")."""
    return any(fnmatch.fnmatchcase(qualified, p) for p in patterns)


def _copy_folder(source: Lake, files: list[str], target: Lake, version_dir: str) -> str:
    """Copy one version folder's data files to `version_dir` under `target`. Files keep their names
    when they end in .parquet (so Spark's part names survive a round trip); extension-less files
    (dbt-athena, Athena CTAS) get part names."""
    target.storage.make_dir(version_dir)
    for i, uri in enumerate(files):
        name = uri.rsplit("/", 1)[1]
        if not name.endswith(".parquet"):
            name = f"part-{i:05d}.parquet"
        source.storage.copy_file(uri, Storage.join(version_dir, name), target.storage)
    return version_dir


def _copy_version(source: Lake, ref: TableRef, target: Lake) -> str:
    """Copy a committed version into the same version id under `target`; returns the target version
    folder (a partitioned table: the table folder, each partition under its own version id)."""
    table = target.table_uri(ref.zone, ref.name)
    if not ref.is_partitioned:
        return _copy_folder(source, source.files(ref), target, Storage.join(table, "versions", ref.version))
    present = target.current(ref.zone, ref.name)
    have = {(p.key, p.version) for p in present.partitions} if present is not None and present.is_partitioned else set()
    for partition in ref.partitions:
        if (partition.key, partition.version) not in have:  # partition versions are immutable
            _copy_folder(source, source.storage.files(partition.uri), target,
                         Storage.join(table, "versions", partition.version, partition.key))
    return table


def _commit_copy(source: Lake, ref: TableRef, target: Lake, version_dir: str, drop: set[str] | None) -> str:
    """Commit a copied version in `target`; returns the version the target now has (a partitioned
    table gets a commit of its own). A partitioned table drops the partitions in `drop`; None: every
    partition of `target` that `ref` does not hold (a copy of the whole table)."""
    if not ref.is_partitioned:
        return target.commit(ref.zone, ref.name, version_dir).version
    current = target.current(ref.zone, ref.name)
    present = current.partitions if current is not None and current.is_partitioned else ()
    if drop is None:
        drop = {p.key for p in present}
    held = {(p.key, p.version) for p in present}
    wanted = {p.key for p in ref.partitions}
    return target.commit_partitions(
        ref.zone, ref.name, ref.partition_by,
        add={p.key: Storage.join(version_dir, "versions", p.version) for p in ref.partitions
             if (p.key, p.version) not in held},
        drop=drop - wanted, schema=source.table_schema(ref)).version


def copy_tables(source: Lake, target: Lake, patterns: Sequence[str] = ("*",),
                skip: dict[str, str] | None = None, *,
                held: dict[str, frozenset[str]] | None = None, exclude: Sequence[str] = ()) -> dict[str, str]:
    """Copy the current version of every table matching `patterns` ("gold.*", "bronze.customers")
    but not `exclude` from `source` to `target` and commit it there. All versions are copied before
    any is committed, so a failure part-way leaves `target` as it was. Tables whose current version
    equals `skip`'s are left alone. `held` (publishing a workspace) maps a partitioned table to the
    partition keys the source started with: only those it no longer has are dropped from `target`,
    and a table absent from `held` only gains or replaces partitions. Returns qualified name -> the
    version `target` now has."""
    skip = skip or {}
    copied: list[tuple[TableRef, str]] = []
    # Only the zones the patterns name are listed: a stage's role may reach no other (ADR 0009).
    zones = [z for z in ZONES if any(fnmatch.fnmatchcase(z, p.split(".", 1)[0]) for p in patterns)]
    for zone in zones:
        for ref in source.tables(zone):
            if (table_matches(ref.qualified_name, patterns) and not table_matches(ref.qualified_name, exclude)
                    and skip.get(ref.qualified_name) != ref.version):
                copied.append((ref, _copy_version(source, ref, target)))
    return {ref.qualified_name: _commit_copy(source, ref, target, version_dir,
                                             None if held is None else set(held.get(ref.qualified_name, ())))
            for ref, version_dir in copied}


class WorkspaceLake(Lake):
    """The local lake of a workspace. Tables matching `in_place` that the stage has not written
    resolve to their committed versions on `remote` (s3:// files, read with DuckDB); everything
    else is local."""

    def __init__(self, root: str | Path, *, remote: Lake, in_place: Sequence[str], label: str | None = None) -> None:
        super().__init__(root, label=label)
        self.remote = remote
        self.in_place = tuple(in_place)

    def local_tables(self, zone: str | None = None) -> list[TableRef]:
        """The tables held (pulled or written) in the workspace itself."""
        return [ref for ref in super().tables(zone) if not is_s3(ref.uri)]

    def current(self, zone: str, name: str) -> TableRef | None:
        ref = super().current(zone, name)
        if ref is None and table_matches(f"{zone}.{name}", self.in_place):
            return self.remote.current(zone, name)
        return ref

    def tables(self, zone: str | None = None) -> list[TableRef]:
        refs = {ref.qualified_name: ref for ref in super().tables(zone)}
        for z in (zone,) if zone else ZONES:
            for ref in self.remote.tables(z):
                if table_matches(ref.qualified_name, self.in_place):
                    refs.setdefault(ref.qualified_name, ref)
        return [refs[name] for name in sorted(refs, key=lambda n: (ZONES.index(n.split(".")[0]), n))]

    def _owner(self, ref: TableRef | str) -> Lake:
        uri = ref.uri if isinstance(ref, TableRef) else str(ref)
        return self.remote if is_s3(uri) else self

    def files(self, version: str | TableRef) -> list[str]:
        owner = self._owner(version)
        return Lake.files(owner, version) if owner is self else owner.files(version)

    def table_schema(self, ref: TableRef) -> pa.Schema:
        owner = self._owner(ref)
        return Lake.table_schema(owner, ref) if owner is self else owner.table_schema(ref)

    def read_arrow(self, ref: TableRef, columns: list[str] | None = None) -> pa.Table:
        owner = self._owner(ref)
        return Lake.read_arrow(owner, ref, columns) if owner is self else owner.read_arrow(ref, columns)

    def count_rows(self, version: str | TableRef) -> int:
        owner = self._owner(version)
        return Lake.count_rows(owner, version) if owner is self else owner.count_rows(version)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pull_files(remote: Lake, local: Lake, folders: Sequence[str]) -> dict[str, str]:
    """Download every file under each lake-relative folder (or the file itself) of `remote` to the
    same place under `local`, locks excepted; returns lake-relative path -> digest."""
    pulled: dict[str, str] = {}
    for folder in folders:
        location = Storage.join(remote.location, folder)
        uris = [location] if remote.storage.is_file(location) else remote.storage.walk(location)
        for uri in uris:
            relative = uri[len(remote.location) + 1:]
            if relative.endswith(".lock"):
                continue  # process-local locks and the lake's own lock mean nothing elsewhere
            data = remote.storage.read_bytes(uri) or b""
            target = local.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            pulled[relative] = _digest(data)
    return pulled


def push_files(local: Lake, remote: Lake, folders: Sequence[str], pulled: dict[str, str]) -> tuple[int, int]:
    """Upload new and changed files under each folder; delete on `remote` what was pulled and is
    gone locally. Returns (files written, files deleted)."""
    present: set[str] = set()
    written = 0
    for name in folders:
        folder = local.root / name
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else [folder] * folder.is_file()
        for path in sorted(files):
            if path.name.endswith(".lock"):
                continue
            relative = path.relative_to(local.root).as_posix()
            present.add(relative)
            data = path.read_bytes()
            if pulled.get(relative) != _digest(data):
                remote.storage.write_bytes(Storage.join(remote.location, relative), data)
                written += 1
    gone = sorted(set(pulled) - present)
    for relative in gone:
        remote.storage.delete_file(Storage.join(remote.location, relative))
    return written, len(gone)


def _state_folders(parts: Sequence[str]) -> list[str]:
    return [f"_system/{part}" for part in parts]


def _push_exports(local: Lake, remote: Lake, folders: Sequence[str], report: SyncReport) -> None:
    """Upload the plain files the stage wrote under each lake-relative folder (its exports)."""
    for folder in folders:
        base = local.root / folder
        for path in sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []:
            relative = path.relative_to(local.root).as_posix()
            remote.storage.write_bytes(Storage.join(remote.location, relative), path.read_bytes())
            report.export_files_up += 1


@contextmanager
def workspace(lake: Lake, *, reads: Sequence[str], state: Sequence[str] = (), writes: Sequence[str] = ("*",),
              exports: Sequence[str] = (), scratch: str | Path | None = None,
              in_place: Sequence[str] = ()) -> Iterator[tuple[Lake, SyncReport]]:
    """Yield a local lake holding the tables matching `reads` (but not `in_place`: those are read
    on S3) and the `_system/<state>` folders of `lake`; when the block exits without an error,
    publish the tables it committed (which must match `writes`, else nothing is published), the
    state it changed and the files under `exports`. A local `lake` is yielded as it is."""
    report = SyncReport()
    if lake.is_local:
        yield lake, report
        return
    folder = Path(tempfile.mkdtemp(prefix="rfmlake-workspace-", dir=scratch))
    try:
        local = WorkspaceLake(folder / "lake", remote=lake, in_place=in_place, label=lake.label)
        report.pulled = copy_tables(lake, local, reads, exclude=in_place) if reads else {}
        held = {ref.qualified_name: frozenset(p.key for p in ref.partitions)
                for ref in local.local_tables() if ref.is_partitioned}
        # The PII key fingerprint always comes along: a stage that tokenizes checks its key against it.
        state = (*state, PII_FINGERPRINT)
        pulled_state = pull_files(lake, local, _state_folders(state))
        report.bytes_down = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        log.info("workspace: pulled %d tables and %d state files (%d bytes) from %s",
                 len(report.pulled), len(pulled_state), report.bytes_down, lake.location)
        yield local, report
        committed = {ref.qualified_name for ref in local.local_tables()
                     if report.pulled.get(ref.qualified_name) != ref.version}
        undeclared = sorted(name for name in committed if not table_matches(name, writes))
        if undeclared:
            raise WorkspaceError(f"the stage committed {', '.join(undeclared)}, outside what it may write "
                                 f"({', '.join(writes) or 'nothing'}); nothing was published to {lake.location}")
        published = Lake(local.location)  # the workspace's own tables, not those read in place
        report.pushed = copy_tables(published, lake, ("*",), skip=report.pulled, held=held)
        _push_exports(local, lake, exports, report)
        report.state_files_up, report.state_files_removed = push_files(local, lake, _state_folders(state), pulled_state)
        log.info("workspace: committed %s on %s", ", ".join(sorted(report.pushed)) or "no tables", lake.location)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
