"""A stage stuck in a deadlocked DuckDB query (docs/adr/0024: a streamed UNION ALL of joins, which
the package no longer runs; a plugin or a future engine bug could) does not hang the run: the stall
watchdog interrupts it, the run fails naming the stall, nothing it committed stays, and the lake is
free for the next run. In a child process with a deadline, so a regression fails instead of hanging."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

STAGES = '''
import duckdb
import pyarrow as pa

def stall(ctx, state):
    ctx.lake.write_arrow("gold", "a", pa.table({"x": [1]}))
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
    for name, select in (("o", "i AS id, i % 100 AS c"), ("p", "i AS id, 'x' || i AS name")):
        con.execute(f"COPY (SELECT {select} FROM range(1000000) t(i)) TO '{ctx.lake.root}/../{name}.parquet'")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{ctx.lake.root}/../{name}.parquet'")
    # streamed on purpose: the shape that deadlocks DuckDB 1.5
    con.execute("SELECT o.c, p.name FROM o JOIN p USING (id) "
                "UNION ALL SELECT o.c, p.name FROM p JOIN o USING (id)").fetchall()
    return {}

def commit(ctx, state):
    ctx.lake.write_arrow("gold", "a", pa.table({"x": [2]}))
    return {}
'''

SCRIPT = '''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import Stage
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import Settings

def run(entry):
    ctx = RunContext(landing_dir=sys.argv[1] + "/landing", lake=Lake(sys.argv[1] + "/lake"),
                     settings=Settings(stage_stall_minutes=0.1))
    return run_pipeline(ctx, stages=(Stage(entry, "test", runtime="python", entry=f"stall_stages:{entry}",
                                           writes=("gold.a",)),))

out = {}
t0 = time.monotonic()
try:
    run("stall")
except PipelineError as exc:
    out["error"] = str(exc)
out["seconds"] = time.monotonic() - t0
out["after_failure"] = Lake(sys.argv[1] + "/lake").current("gold", "a") is not None
out["next_run"] = [s.status for s in run("commit").stages]
print(json.dumps(out))
'''


def test_a_stalled_stage_fails_the_run_and_frees_the_lake(tmp_path: Path) -> None:
    (tmp_path / "stall_stages.py").write_text(textwrap.dedent(STAGES))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["error"].startswith("stage stall failed:\nstopped after no progress for 0.1 minutes")
    assert "stage_stall_minutes: 0.1" in out["error"]
    assert out["after_failure"] is False  # the stage's commit was rolled back
    assert out["next_run"] == ["succeeded"]
    assert out["seconds"] < 120
