"""Incremental ingestion equals a full rebuild: whatever order and grouping landing files arrive in
(a changed file, a file of only bad rows and an empty file among them), the lake ends up exactly as
one full run over the final landing makes it; a kill -9 mid-run leaves the lake as it was."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_landing_fixture import build_landing  # type: ignore[import-not-found]
from test_ingest_rerun import snapshot  # type: ignore[import-not-found]

from rfmlake.lake import Lake

ROOT = Path(__file__).resolve().parents[3]
TEST_KEY = "test-key-not-a-secret"
# Extra deliveries beside the crafted landing (which has three currency_rates files): a file of only
# bad rows, an empty file, an order file and a currency_rates file that correct (change) rows landed
# earlier, and a second version of one file.
EXTRA: dict[str, str] = {
    "orders/bad-only.csv": "order_id,customer_id,order_ts\n,c1,2024-01-01\no50,c1,never\n",
    "events/empty.jsonl": "",
    "orders/corrections.csv": "order_id,customer_id,order_ts,order_total\no8,c1,2024-01-08T12:00:00,9.00\n"
                              "o3,c1,2024-01-10,3.00\n",
    "customers/crm3.csv": "customer_id,email,updated_at\nc2,bob@newest.com,2024-07-01\nc9,nine@x.com,2024-01-01\n",
    "currency_rates/zz-corrections.csv": "rate_date,currency,rate,base_currency\n2024-01-08,SEK,11.05,EUR\n"
                                         "2024-01-04,USD,1.0942,EUR\n2024-01-10,GBP,0.8611,EUR\n",
}
CHANGED = ("customers/crm3.csv",
           "customer_id,email,updated_at\nc2,bob@changed.com,2024-08-01\nc10,ten@x.com,2024-01-01\n")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every landing file (relative path -> bytes) a test may deliver."""
    landing = build_landing(tmp_path_factory.mktemp("pool"))
    files = {p.relative_to(landing).as_posix(): p.read_bytes() for p in sorted(landing.rglob("*"))
             if p.is_file() and not p.name.startswith("_")}
    files.update({path: text.encode() for path, text in EXTRA.items()})
    return files


def _deliver(landing: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = time.time_ns() + 1_000_000  # a re-delivery is always newer, even within a clock tick
        os.utime(path, ns=(stamp, stamp))


def _ingest(landing: Path, lake: Lake, *, full: bool = False) -> None:
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    engine = DuckEngine()
    try:
        report = run_ingest(engine, RunContext(landing_dir=landing, lake=lake, settings=Settings(), full=full))
    finally:
        engine.close()
    assert all(r.balanced for r in report.reconciliation)


def _full_snapshot(landing: Path, root: Path) -> dict[str, list[tuple]]:
    lake = Lake(root / "full-lake")
    _ingest(landing, lake, full=True)
    return snapshot(lake)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sequence_of_incremental_runs_equals_one_full_run(pool: dict[str, bytes], tmp_path_factory, data,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RFMLAKE_PII_KEY", TEST_KEY)
    root = tmp_path_factory.mktemp("incremental")
    paths = data.draw(st.permutations(sorted(pool)), label="arrival order")
    runs = data.draw(st.integers(min_value=1, max_value=4), label="runs")
    cuts = sorted(data.draw(st.lists(st.integers(min_value=1, max_value=len(paths) - 1), min_size=runs - 1,
                                     max_size=runs - 1, unique=True), label="cuts"))
    batches = [paths[a:b] for a, b in zip([0, *cuts], [*cuts, len(paths)], strict=True)]
    change_after = data.draw(st.integers(min_value=0, max_value=len(batches) - 1), label="change after run")
    landing, lake = root / "landing", Lake(root / "lake")
    landing.mkdir()
    for i, batch in enumerate(batches):
        _deliver(landing, {p: pool[p] for p in batch})
        if i == change_after and CHANGED[0] in (p for b in batches[: i + 1] for p in b):
            _deliver(landing, {CHANGED[0]: CHANGED[1].encode()})  # a file delivered again, changed
        _ingest(landing, lake)
    assert snapshot(lake) == _full_snapshot(landing, root)


def test_a_changed_file_supersedes_its_rows_and_a_vanished_file_stays_until_full(pool: dict[str, bytes],
                                                                                  tmp_path: Path) -> None:
    from rfmlake.lake.catalog import connect

    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    _deliver(landing, pool)
    _ingest(landing, lake)
    _deliver(landing, {CHANGED[0]: CHANGED[1].encode()})
    _ingest(landing, lake)
    con = connect(lake)
    emails = dict(con.execute("SELECT customer_id, email FROM bronze.customers WHERE _source_file = ?",
                              [CHANGED[0]]).fetchall())
    assert emails == {"c2": "bob@changed.com", "c10": "ten@x.com"}  # the earlier version's rows are gone
    assert con.execute("SELECT count(*) FROM silver.customers WHERE customer_id = 'c9'").fetchone()[0] == 0
    # a rate re-sent in a later file replaces the earlier one for its (rate_date, base, currency)
    assert con.execute("SELECT rate, _source_file FROM silver.currency_rates WHERE currency = 'SEK'").fetchall() == [
        (11.05, "currency_rates/zz-corrections.csv")]
    assert snapshot(lake) == _full_snapshot(landing, tmp_path)

    (landing / "orders" / "corrections.csv").unlink()  # landing retention removed an ingested file
    _ingest(landing, lake)
    con = connect(lake)
    assert con.execute("SELECT order_total FROM silver.orders WHERE order_id = 'o3'").fetchone()[0] == 3
    _ingest(landing, lake, full=True)
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM silver.orders WHERE order_id = 'o3'").fetchone()[0] == 0


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path

from rfmlake.ingest.engine import DuckEngine
from rfmlake.ingest.jobs import run_ingest
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import Settings

real, calls = Lake._write_pointer, []


def killed_midway(self, *args, **kwargs):  # kill -9 after some pointers of a commit are written
    calls.append(1)
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)


Lake._write_pointer = killed_midway
run_ingest(DuckEngine(), RunContext(landing_dir=Path(sys.argv[1]), lake=Lake(sys.argv[2]), settings=Settings()))
"""


@pytest.mark.parametrize("kill_at", [2, 5, 10])  # in bronze's commit, in silver's, silver's last table
def test_kill_9_mid_incremental_run_leaves_the_lake_as_it_was(pool: dict[str, bytes], tmp_path: Path,
                                                               kill_at: int) -> None:
    from rfmlake.lake.catalog import connect

    first = {p: d for p, d in pool.items() if not p.startswith("orders/")}
    landing, lake = tmp_path / "landing", Lake(tmp_path / "lake")
    _deliver(landing, first)
    _ingest(landing, lake)
    before = snapshot(lake)
    _deliver(landing, {p: d for p, d in pool.items() if p.startswith("orders/")})
    _deliver(landing, {CHANGED[0]: CHANGED[1].encode()})

    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "RFMLAKE_PII_KEY": TEST_KEY}
    result = subprocess.run([sys.executable, str(script), str(landing), str(lake.root), str(kill_at)],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    killed_during_silver = snapshot(Lake(lake.root)) != before  # bronze committed; silver was killed
    assert lake.recover()  # what the next run does first: the half-applied commit is rolled back
    after = snapshot(lake)
    if killed_during_silver:  # bronze's commit completed: the new files are in bronze, silver as it was
        assert {t: r for t, r in after.items() if not t.startswith("bronze.")} == {
            t: r for t, r in before.items() if not t.startswith("bronze.")}
    else:
        assert after == before
    assert connect(lake).execute("SELECT count(*) FROM silver.ingest_reconciliation "
                                 "WHERE rows_in <> rows_accepted + rows_quarantined").fetchone()[0] == 0
    shutil.rmtree(lake.system_dir / "tmp", ignore_errors=True)
    _ingest(landing, lake)  # the next run completes
    assert snapshot(lake) == _full_snapshot(landing, tmp_path)
