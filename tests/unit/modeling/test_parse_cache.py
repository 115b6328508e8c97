"""The name of a cached dbt parse: it changes with everything the parse depends on, and with nothing
else (the lake's folder), so another lake reuses the parse and an edited project never does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rfmlake.modeling import parse_cache
from rfmlake.modeling.project import find_project_dir, write_profiles

VARS = ["build", "--vars", json.dumps({"as_of_date": None, "lookback_days": None})]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "dbt"
    shutil.copytree(find_project_dir(), copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(parse_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "dbt-parse"


def _profiles(folder: Path, lake: str = "lake-a", prefix: str = "rfmlake") -> Path:
    write_profiles(folder, folder.parent / lake / "_system" / "dbt" / "rfmlake.duckdb", prefix)
    return folder


def test_another_lake_has_the_same_key(project: Path, tmp_path: Path) -> None:
    one = parse_cache.parse_key(project, _profiles(tmp_path / "p1", "lake-a"), "local", VARS)
    other = parse_cache.parse_key(project, _profiles(tmp_path / "p2", "lake-b"), "local", VARS)
    assert one is not None and one == other


def test_the_key_changes_with_what_the_parse_depends_on(project: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = _profiles(tmp_path / "p")
    base = parse_cache.parse_key(project, profiles, "local", VARS)
    assert parse_cache.parse_key(project, profiles, "athena", VARS) != base
    assert parse_cache.parse_key(project, profiles, "local", ["build", "--vars", '{"lookback_days": 30}']) != base
    assert parse_cache.parse_key(project, _profiles(tmp_path / "q", prefix="shop"), "local", VARS) != base

    model = next((project / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = parse_cache.parse_key(project, profiles, "local", VARS)
    assert edited != base
    (project / "models" / "new_model.sql").write_text("select 1 as x\n")
    assert parse_cache.parse_key(project, profiles, "local", VARS) not in (base, edited)

    # the athena output's schema comes from an environment variable, read at parse time
    before = parse_cache.parse_key(project, profiles, "athena", VARS)
    monkeypatch.setenv("RFMLAKE_ATHENA_SCHEMA", "elsewhere_gold")
    assert parse_cache.parse_key(project, profiles, "athena", VARS) != before


def test_what_dbt_writes_into_the_project_is_not_part_of_the_key(project: Path, tmp_path: Path) -> None:
    profiles = _profiles(tmp_path / "p")
    base = parse_cache.parse_key(project, profiles, "local", VARS)
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    (project / "logs").mkdir()
    (project / "logs" / "dbt.log").write_text("ran")
    assert parse_cache.parse_key(project, profiles, "local", VARS) == base


def test_off_means_no_key_and_nothing_stored(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             cache: Path) -> None:
    monkeypatch.setenv(parse_cache.CACHE_ENV, "off")
    assert parse_cache.cache_dir() is None
    assert parse_cache.parse_key(project, _profiles(tmp_path / "p"), "local", VARS) is None
    target = tmp_path / "target"
    target.mkdir()
    (target / parse_cache.PARTIAL_PARSE_FILE).write_bytes(b"parse")
    parse_cache.store("k", target, since=0)
    assert not cache.exists()


def test_a_missing_profile_gives_no_key(project: Path, tmp_path: Path) -> None:
    assert parse_cache.parse_key(project, tmp_path / "nowhere", "local", VARS) is None


def test_only_a_parse_written_by_this_command_is_stored_and_the_cache_stays_small(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "target"
    target.mkdir()
    saved = target / parse_cache.PARTIAL_PARSE_FILE
    saved.write_bytes(b"an earlier command's parse")
    parse_cache.store("old", target, since=saved.stat().st_mtime + 10)
    assert not cache.exists() or not list(cache.iterdir())

    monkeypatch.setattr(parse_cache, "KEEP", 3)
    for number in range(5):
        parse_cache.store(f"k{number}", target, since=0)
    assert len(list(cache.glob("*.msgpack"))) == 3 and not list(cache.glob(".*"))  # no staging file left


def test_an_unreadable_entry_is_passed_over(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / "k.msgpack").write_bytes(b"\x00 not a manifest")
    assert parse_cache.load("k") is None
    assert parse_cache.load("absent") is None


def test_without_a_home_folder_there_is_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(parse_cache.CACHE_ENV)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert parse_cache.cache_dir() is None
