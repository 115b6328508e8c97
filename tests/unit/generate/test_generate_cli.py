"""`rfmlake generate` command module, driven through its own argparse parser (main.py is the lead's)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from rfmlake.cli import generate as generate_cli
from rfmlake.generate import MANIFEST_NAME, GenerationError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rfmlake")
    generate_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_defaults_match_the_library() -> None:
    args = parse(["generate", "--out", "x"])
    assert (args.order_lines, args.seed, args.bad_rows, args.end_date, args.years, args.overwrite) == (
        20_000, 7, False, date(2026, 10, 31), 3.0, False)
    assert args.func is generate_cli.run


def test_help_states_the_order_lines_the_library_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    # the bounds generate_landing enforces (the help said 1000.., the library takes 50: README)
    from rfmlake.generate.landing import MAX_ORDER_LINES, MIN_ORDER_LINES

    with pytest.raises(SystemExit):
        parse(["generate", "--help"])
    assert f"{MIN_ORDER_LINES}..{MAX_ORDER_LINES}" in capsys.readouterr().out


def test_run_writes_the_landing_and_prints_a_table(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    args = parse(["generate", "--out", str(tmp_path / "land"), "--order-lines", "1000", "--seed", "3",
                  "--bad-rows", "--end-date", "2025-12-31", "--years", "1.5"])
    assert args.func(args, console=console) == 0
    manifest = json.loads((tmp_path / "land" / MANIFEST_NAME).read_text())
    params = manifest["parameters"]
    assert params == {"order_lines": 1000, "seed": 3, "bad_rows": True, "end_date": "2025-12-31", "years": 1.5}
    text = console.export_text()
    for entity in ("customers", "orders", "order_items", "events", "access_logs", "aws_rfm_guidance"):
        assert entity in text
    assert f"{manifest['rows_per_entity']['order_items']:,}" in text
    assert f"{sum(manifest['injected_bad_rows']['orders'].values())}" in text


def test_run_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    console = Console(record=True)
    args = parse(["generate", "--out", str(tmp_path), "--order-lines", "1000"])
    assert generate_cli.run(args, console=console) == 0
    with pytest.raises(GenerationError, match="--overwrite"):
        generate_cli.run(args, console=console)
    assert generate_cli.run(parse(["generate", "--out", str(tmp_path), "--order-lines", "1000", "--overwrite"]),
                            console=console) == 0


def test_bad_end_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["generate", "--out", "x", "--end-date", "31/10/2026"])
    assert "not a date like 2026-10-31" in capsys.readouterr().err
