"""The bad-input suite (issue 15): hostile landing files of every entity and format (generated in
tests/hostile_landing.py). For each, the run either refuses with a message naming the file (no
traceback, no table changed) or goes on: its rows are accepted or quarantined with the expected
reasons, nothing is dropped (rows in = accepted + quarantined, one reconciliation row per file,
empty ones included), accepted values arrive unchanged, and every later stage (dbt, segmentation,
value, quality, profiles, activation) runs on what was accepted."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hostile_landing import BASE, CASES, Hostile, Quarantined, Refused, write_base, write_case
from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow

SHARED = [c for c in CASES if isinstance(c.expect, Quarantined) and not c.expect.settings]
ON_THEIR_OWN = [c for c in CASES if isinstance(c.expect, Quarantined) and c.expect.settings]
REFUSED = [c for c in CASES if isinstance(c.expect, Refused)]


def _ids(cases: list[Hostile]) -> list[str]:
    return [c.path for c in cases]


def test_the_suite_covers_every_entity_and_format() -> None:
    from rfmlake.contract.entities import ENTITIES, LANDING_FORMATS

    assert len(CASES) >= 40 and len({c.path for c in CASES}) == len(CASES)
    assert {c.entity for c in CASES} == set(ENTITIES)
    formats = {LANDING_FORMATS[Path(c.path).suffix] for c in CASES}
    assert formats == {"csv", "json", "parquet", "text"}
    assert REFUSED and SHARED and ON_THEIR_OWN


def _facts(lake: Lake) -> dict[str, Any]:
    con = connect(lake)
    try:
        reconciliation = {f: (i, a, q) for f, i, a, q in con.execute(
            "SELECT source_file, rows_in, rows_accepted, rows_quarantined FROM silver.ingest_reconciliation").fetchall()}
        reasons: dict[str, Counter[str]] = {}
        for source_file, reason, rows in con.execute(
                "SELECT source_file, reason, count(*) FROM bronze.quarantine GROUP BY ALL").fetchall():
            reasons.setdefault(source_file, Counter())[reason] = rows
        return {"reconciliation": reconciliation, "reasons": reasons}
    finally:
        con.close()


def _check(case: Hostile, lake: Lake, facts: dict[str, Any]) -> None:
    expect = case.expect
    assert isinstance(expect, Quarantined)
    rows_in, accepted, quarantined = facts["reconciliation"][case.path]  # a row for every file, empty ones too
    assert (rows_in, accepted, quarantined) == (expect.rows_in, expect.accepted, sum(expect.reasons.values())), (
        case.path, facts["reasons"].get(case.path))
    assert dict(facts["reasons"].get(case.path, {})) == {r: n for r, n in expect.reasons.items() if n}
    con = connect(lake)
    try:
        for table, key, value, column, landed in expect.kept:
            rows = con.execute(f'SELECT "{column}" FROM {table} WHERE "{key}" = ?', [value]).fetchall()
            assert len(rows) == 1, (case.path, table, value)
            assert str(rows[0][0]) == landed, (case.path, column, str(rows[0][0])[:80])
    finally:
        con.close()


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `rfmlake run`, every stage, over the base landing and every shared hostile file."""
    root = tmp_path_factory.mktemp("hostile")
    landing, lake = root / "landing", Lake(root / "lake")
    write_base(landing)
    for case in SHARED:
        write_case(landing, case)
    code = main(["run", "--input", str(landing), "--lake", str(lake.root)])
    return {"code": code, "lake": lake, "landing": landing}


def test_the_run_over_every_hostile_file_completes(shared_run: dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    assert shared_run["code"] == 0, capsys.readouterr()
    facts = _facts(shared_run["lake"])
    landed = {p.relative_to(shared_run["landing"]).as_posix() for p in shared_run["landing"].rglob("*") if p.is_file()}
    assert set(facts["reconciliation"]) == landed == set(BASE) | {c.path for c in SHARED}
    assert all(i == a + q for i, a, q in facts["reconciliation"].values())
    con = connect(shared_run["lake"])
    try:  # the gold side ran on what was accepted, the largest amounts included
        assert con.execute("SELECT monetary FROM gold.customer_rfm WHERE customer_id = 'am-c11'").fetchone()[0] == (
            con.execute("SELECT sum(order_total) FROM silver.orders WHERE customer_id = 'am-c11'").fetchone()[0])
        assert con.execute("SELECT count(*) FROM gold.customer_profile").fetchone()[0] > 0
    finally:
        con.close()


@pytest.mark.parametrize("case", SHARED, ids=_ids(SHARED))
def test_a_hostile_file_is_accepted_or_quarantined_with_its_reason(shared_run: dict[str, Any], case: Hostile) -> None:
    if shared_run["code"] != 0:
        pytest.fail("the shared run failed (see test_the_run_over_every_hostile_file_completes)")
    _check(case, shared_run["lake"], _facts(shared_run["lake"]))


@pytest.mark.parametrize("case", ON_THEIR_OWN, ids=_ids(ON_THEIR_OWN))
def test_a_hostile_file_with_its_own_settings(tmp_path: Path, case: Hostile) -> None:
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import load_settings

    assert isinstance(case.expect, Quarantined)
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    write_base(landing)
    write_case(landing, case)
    engine = DuckEngine()
    try:
        run_ingest(engine, RunContext(landing_dir=landing, lake=lake,
                                      settings=load_settings(overrides=case.expect.settings)))
    finally:
        engine.close()
    _check(case, lake, _facts(lake))


def _committed(lake: Lake) -> dict[str, tuple[str, dict[str, str]]]:
    """Every table the lake shows: its current version and the digest of each of its data files
    (every partition's), so a file rewritten in place shows as well as a new version."""
    return {ref.qualified_name: (ref.version, {Path(f).relative_to(lake.root).as_posix():
                                               hashlib.sha256(Path(f).read_bytes()).hexdigest()
                                               for f in lake.files(ref)})
            for ref in lake.tables()}


@pytest.mark.parametrize("case", REFUSED, ids=_ids(REFUSED))
def test_a_hostile_file_is_refused_with_a_message_naming_it(shared_run: dict[str, Any], tmp_path: Path,
                                                            case: Hostile, capsys: pytest.CaptureFixture) -> None:
    """The file lands beside files an earlier run committed (a copy of the shared run's landing and
    lake): the run stops naming it, and every table keeps its version and its rows."""
    assert isinstance(case.expect, Refused)
    if shared_run["code"] != 0:
        pytest.fail("the shared run failed (see test_the_run_over_every_hostile_file_completes)")
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    shutil.copytree(shared_run["landing"], landing)
    shutil.copytree(shared_run["lake"].root, lake.root, symlinks=True)
    before = _committed(lake)
    assert {"bronze.customers", "silver.orders", "gold.customer_rfm"} <= set(before)
    write_case(landing, case)
    capsys.readouterr()
    code = main(["run", "--input", str(landing), "--lake", str(lake.root)])
    captured = capsys.readouterr()
    message = " ".join((captured.out + captured.err).split())
    assert code == 1 and "Traceback" not in message
    assert f"landing file {case.path}" in message and case.expect.says.lower() in message.lower(), message[-600:]
    after = _committed(lake)
    assert {name: version for name, (version, _) in after.items()} == {
        name: version for name, (version, _) in before.items()}  # nothing committed
    assert [name for name in after if after[name] != before[name]] == []  # nothing rewritten in place
