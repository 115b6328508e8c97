"""The CLI's error paths: a clear message and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rfmlake.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_missing_input_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "run", "--input", str(tmp_path / "nope"), "--lake", str(tmp_path / "lake"))
    assert code == 1
    assert "nope" in out and "Traceback" not in out


def test_empty_input_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "landing").mkdir()
    code, out = run_cli(capsys, "run", "--input", str(tmp_path / "landing"), "--lake", str(tmp_path / "lake"))
    assert code == 1
    assert "empty" in out.lower() and "Traceback" not in out


def test_unknown_entity_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "orders" / "o.csv").write_text("order_id,customer_id,order_ts\n1,c1,2026-01-01\n")
    (landing / "invoices").mkdir()
    (landing / "invoices" / "i.csv").write_text("invoice_id\n1\n")
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(tmp_path / "lake"))
    assert code == 1
    assert "invoices" in out and "customers" in out  # names the bad one and lists the known ones
    assert "Traceback" not in out


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing"
    (landing / "order_items").mkdir(parents=True)
    (landing / "order_items" / "items.parquet").write_bytes(b"this is not parquet at all")
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(tmp_path / "lake"))
    assert code == 1
    assert "items.parquet" in out and "Traceback" not in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    target = landing / "orders" / "o.csv"
    target.write_text("order_id,customer_id,order_ts\n1,c1,2026-01-01\n")
    target.chmod(0)
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(tmp_path / "lake"))
    assert code == 1
    assert "o.csv" in out and "Traceback" not in out


def test_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("rfm:\n  score_bins: 0\n")
    (tmp_path / "landing").mkdir()
    code, out = run_cli(capsys, "run", "--input", str(tmp_path / "landing"), "--lake", str(tmp_path / "lake"),
                        "--config", str(config))
    assert code == 1
    assert "rfm.score_bins" in out


def test_bad_as_of_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--input", str(tmp_path), "--lake", str(tmp_path / "l"), "--as-of", "31/12/2026"])
    assert info.value.code == 2
    assert "is not a date like 2026-10-31" in capsys.readouterr().err


def test_sql_on_missing_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "sql", "SELECT 1", "--lake", str(tmp_path / "nolake"))
    assert code == 1
    assert "no lake at" in out


def test_console_script_is_installed_and_reports_errors(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("rfmlake")
    result = subprocess.run([str(script), "run", "--input", str(tmp_path / "missing"), "--lake", str(tmp_path / "l")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("rfmlake run: error:")
    assert "Traceback" not in result.stderr + result.stdout


def _small_landing(landing: Path) -> Path:
    (landing / "orders").mkdir(parents=True)
    (landing / "orders" / "o.csv").write_text("order_id,customer_id,order_ts,order_total\no1,c1,2026-01-01,5.00\n")
    return landing


@pytest.mark.parametrize("layout", ["equal", "inside", "holds", "equal via ..", "inside via a symlink",
                                    "holds via a symlink"])
def test_run_refuses_a_lake_overlapping_the_landing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    layout: str) -> None:
    """`--lake` equal to `--input` used to run once and break every later run (the lake's zone
    folders were read as landing entities)."""
    landing = _small_landing(tmp_path / "landing")
    lake = {
        "equal": landing,
        "inside": landing / "lake",
        "holds": tmp_path,
        "equal via ..": landing / "orders" / "..",
        "inside via a symlink": tmp_path / "link-to-orders",
        "holds via a symlink": tmp_path / "link-to-root",
    }[layout]
    if layout == "inside via a symlink":
        lake.symlink_to(landing / "orders", target_is_directory=True)
    if layout == "holds via a symlink":
        lake.symlink_to(tmp_path, target_is_directory=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(lake))
    assert code == 1 and "Traceback" not in out
    message = " ".join(out.split())
    assert f"--lake {lake}" in message and f"--input {landing}" in message and "folder of its own" in message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_demo_refuses_a_lake_folder_that_leads_into_the_landing(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "lake").symlink_to(tmp_path / "landing", target_is_directory=True)
    code, out = run_cli(capsys, "demo", "--dir", str(tmp_path), "--order-lines", "50")
    assert code == 1 and "Traceback" not in out and "is the landing folder" in " ".join(out.split())
    assert not (tmp_path / "landing" / "bronze").exists() and not (tmp_path / "landing" / "_system").exists()


def test_a_lake_beside_the_landing_runs_again_and_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = _small_landing(tmp_path / "landing")
    for _ in range(2):
        code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(tmp_path / "landing-lake"))
        assert code == 0, out


@pytest.mark.parametrize("folder", ["br[1]", "what?", "star*", "k=v", "h#sh", "back\\slash", "tab\there"])
def test_run_refuses_a_lake_path_duckdb_reads_as_a_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           folder: str) -> None:
    """Found running into such folders: `[1]` and `\\` made the lake's own files unfindable (a glob),
    `?` and `#` cut dbt's database path short, and `k=v` silently added a column `k` to every
    partitioned table (a hive partition)."""
    landing = _small_landing(tmp_path / "landing")
    lake = tmp_path / folder / "lake"
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(lake))
    assert code == 1 and "Traceback" not in out
    assert "read as patterns, not names" in " ".join(out.split()) and not (tmp_path / folder).exists()


def test_odd_but_harmless_lake_paths_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = _small_landing(tmp_path / "land ing")
    lake = tmp_path / "o'brien with space ünï pct%20 curly{a,b} a:b,c;d" / "lake"
    code, out = run_cli(capsys, "run", "--input", str(landing), "--lake", str(lake))
    assert code == 0, out
    code, out = run_cli(capsys, "sql", "--lake", str(lake), "--format", "csv", "SELECT * FROM silver.orders")
    assert code == 0 and out.splitlines()[0].endswith("_load_date,_file")  # no column from the path
