"""A failed run commits nothing (issue 15): whichever stage fails, right after its first write, every
table of the lake, the segmentation model pointer and the profile store are as before the run; the
next run then builds what an undisturbed run builds, and activation exports every change once.

The lake starts from a successful run over part of a generated landing; the rest of the landing
arrives, so the failing run would change every stage's output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE, Stage
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

LATER = ("orders/orders-0002-recent.jsonl", "order_items/order_items-manual-corrections.csv")
# lineage of when or in which run a row was written (person_since: when the run that made a person ran)
VOLATILE = {"_loaded_at", "_load_date", "_file", "ingest_id", "loaded_at", "run_id", "modified", "person_since",
            "changed_at"}


class InjectedFailure(Exception):
    """The failure a test injects into a stage, after that stage's first write."""


def _tables(lake: Lake) -> dict[str, Any]:
    """Every table as a reader sees it: its committed version and its rows."""
    lake = Lake(lake.root)  # pointers as on disk
    con = connect(lake)
    try:
        return {ref.qualified_name: (ref.version, sorted(con.execute(f"SELECT * FROM {ref.qualified_name}").fetchall(),
                                                         key=repr))
                for ref in lake.tables()}
    finally:
        con.close()


def _content(lake: Lake) -> dict[str, list[tuple]]:
    """Every table's rows without lineage that records when or in which run a file was read."""
    con = connect(Lake(lake.root))
    try:
        out = {}
        for ref in Lake(lake.root).tables():
            columns = [r[0] for r in con.execute(f"DESCRIBE {ref.qualified_name}").fetchall() if r[0] not in VOLATILE]
            select = ", ".join(f'"{c}"' for c in columns)
            out[ref.qualified_name] = sorted(con.execute(f"SELECT {select} FROM {ref.qualified_name}").fetchall(),
                                             key=repr)
        return out
    finally:
        con.close()


def _state(lake: Lake) -> dict[str, Any]:
    """What the lake holds besides its tables that readers use."""
    system = lake.system_dir
    pointer = system / "models" / "segmentation" / "current"
    identity_model = system / "models" / "identity" / "model.json"
    profiles = system / "profiles"
    return {
        "segmentation model": pointer.read_text() if pointer.exists() else None,
        "identity model": identity_model.read_bytes() if identity_model.exists() else None,
        "profile generation": (profiles / "CURRENT").read_text(),
        "profile generations": sorted(p.name for p in profiles.glob("*.sqlite")),
    }


def _exported(lake: Lake) -> list[tuple[str, str, str]]:
    """Every row of every published activation export: (action, customer, segment)."""
    root = lake.root / "gold" / "_activation" / "file"
    return sorted((r["action"], r["customer_id"], r["segment"]) for path in root.glob("*/*/*.jsonl")
                  for r in map(json.loads, path.read_text().splitlines()))


JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"  # the repository's example journeys


def _run(landing: Path, lake: Lake, overrides: dict[str, Any] | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
    # Every run advances the example journeys, so the journeys stage has sends to fail after.
    overrides = {"journeys.dir": str(JOURNEYS), **(overrides or {})}
    return run_pipeline(RunContext(landing_dir=landing, lake=lake, settings=load_settings(overrides=overrides)),
                        **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rfmlake.generate import generate_landing

    root = tmp_path_factory.mktemp("failed-runs")
    generate_landing(root / "landing", order_lines=400, seed=23, bad_rows=True)
    held = root / "held-back"
    for relative in LATER:
        (held / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root / "landing" / relative, held / relative)
    first = Lake(root / "first")
    _run(root / "landing", first)  # the lake every test starts from
    for relative in LATER:
        shutil.move(held / relative, root / "landing" / relative)
    reference = Lake(root / "reference")
    shutil.copytree(first.root, reference.root)
    _run(root / "landing", reference)  # the undisturbed second run
    assert _content(reference) != _content(first)
    return {"landing": root / "landing", "first": first, "reference": reference}


def _arm(monkeypatch: pytest.MonkeyPatch, target: str, stage: str,
         observe: Callable[[], Any]) -> tuple[Callable, list[Any]]:
    """Make `target` ("module:Class.method") raise InjectedFailure right after its first call that
    completes while `stage` runs; returns the runner's on_stage callback and a list that gets what
    `observe()` saw at that moment."""
    module_name, attribute = target.split(":")
    owner: Any = __import__(module_name, fromlist=["_"])
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)
    running: list[str] = []
    fired: list[Any] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if running and running[-1] == stage and not fired:
            fired.append(observe())
            raise InjectedFailure(f"injected after the first {attribute} of {stage}")
        return result

    monkeypatch.setattr(owner, name, wrapped)

    def on_stage(s: Stage, event: str, seconds: float | None) -> None:
        if event == "started":
            running.append(s.name)

    return on_stage, fired


# (stage, the write after which it fails): each stage's first write, or a later one whose effect
# lives outside the lake's tables (the segmentation and identity models saved before their tables,
# with a refit; the profile store generation loaded after gold.customer_profile; a delivered
# activation batch; a committed journey tick).
CASES = [
    ("ingest_bronze", "rfmlake.lake.tables:Lake._publish"),
    ("conform_silver", "rfmlake.lake.tables:Lake._publish"),
    ("quality_silver", "rfmlake.lake.tables:Lake.write_system"),
    ("identity", "rfmlake.lake.tables:Lake._publish"),
    ("dbt_build", "rfmlake.lake.tables:Lake._publish"),
    ("segmentation", "rfmlake.lake.tables:Lake._publish"),
    ("customer_value", "rfmlake.lake.tables:Lake._publish"),
    ("recommendations", "rfmlake.lake.tables:Lake._publish"),
    ("quality_gold", "rfmlake.lake.tables:Lake.write_system"),
    ("profiles", "rfmlake.profiles.indexer:index_version"),  # a new generation built, full or incremental
    ("activate", "rfmlake.activation.engine:_Store.append_journal"),
    ("journeys", "rfmlake.journeys.store:JourneyStore.commit"),  # a tick committed (its sends recorded)
]
# The cases whose next run is checked too (a whole run each; the kill -9 test checks one more).
NEXT_RUN = {"profiles", "activate", "journeys"}
# Refits that save a model before the stage's tables.
REFIT = {"segmentation": {"segmentation.refit": True}, "identity": {"identity.refit": True}}


def test_every_stage_is_covered() -> None:
    assert [stage for stage, _ in CASES] == [s.name for s in PIPELINE]


@pytest.mark.parametrize(("stage", "target"), CASES, ids=[f"{s}-{t.rsplit('.', 1)[-1]}" for s, t in CASES])
def test_a_stage_failing_after_its_first_write_leaves_the_lake_as_before_the_run(
        world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, target: str) -> None:
    lake = Lake(tmp_path / "lake")
    shutil.copytree(world["first"].root, lake.root)
    # A refit saves a new model (segmentation: and moves its `current` pointer) before the tables.
    refit = REFIT.get(stage)
    tables, state, exported = _tables(lake), _state(lake), _exported(lake)
    runs = {p.name for p in lake.runs_dir.iterdir()}

    with monkeypatch.context() as patch:
        on_stage, fired = _arm(patch, target, stage, lambda: _state(lake))
        with pytest.raises(PipelineError, match=f"(?s)stage {stage} failed.*injected after the first"):
            _run(world["landing"], lake, refit, on_stage=on_stage)
    assert fired
    if stage == "segmentation":  # the refit had moved the model pointer, the profiles stage loaded a store
        assert fired[0]["segmentation model"] != state["segmentation model"]
    if stage == "identity":
        assert fired[0]["identity model"] != state["identity model"]
    if stage == "profiles":
        assert fired[0]["profile generations"] != state["profile generations"]

    assert _tables(lake) == tables
    assert _state(lake) == state
    if [s.name for s in PIPELINE].index(stage) < [s.name for s in PIPELINE].index("activate"):
        assert _exported(lake) == exported  # activation did not run
    (failed_run,) = {p.name for p in lake.runs_dir.iterdir()} - runs
    report = json.loads((lake.runs_dir / failed_run / "summary.json").read_text())
    assert [(s["name"], s["status"]) for s in report["stages"]][-1] == (stage, "failed")

    if stage in NEXT_RUN:
        _run(world["landing"], lake)  # the next run completes, as if the failed one had never been
        assert _content(lake) == _content(world["reference"])
        assert _exported(lake) == _exported(world["reference"])  # every change exported, once
        assert not list((lake.root / "gold" / "_activation").rglob(".staging-*"))


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path

from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings


def die(stage, event, seconds):
    if stage.name == sys.argv[3] and event == "started":
        os.kill(os.getpid(), signal.SIGKILL)


run_pipeline(RunContext(landing_dir=Path(sys.argv[1]), lake=Lake(sys.argv[2]), settings=load_settings()),
             on_stage=die)
"""


def test_a_run_killed_midway_leaves_the_lake_as_before(world: dict[str, Any], tmp_path: Path) -> None:
    """kill -9 as activation starts: every stage before it built its tables, none became visible."""
    lake = Lake(tmp_path / "lake")
    shutil.copytree(world["first"].root, lake.root)
    tables, state = _tables(lake), _state(lake)
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    result = subprocess.run([sys.executable, str(script), str(world["landing"]), str(lake.root), "activate"],
                            env=os.environ.copy(), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert _tables(lake) == tables
    killed = _state(lake)
    assert killed["profile generation"] == state["profile generation"]  # the API serves what it served
    leftover = set(killed["profile generations"]) - set(state["profile generations"])
    assert leftover  # the profiles stage had loaded a generation, never swapped in
    _run(world["landing"], lake)
    assert _content(lake) == _content(world["reference"])
    assert not leftover & set(_state(lake)["profile generations"])  # the next run dropped it
