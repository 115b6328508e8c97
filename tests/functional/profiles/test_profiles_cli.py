"""`rfmlake profiles index|create-key` and `rfmlake serve` argument errors, through the CLI entry point."""

from __future__ import annotations

import json

from rfmlake.cli.main import main
from rfmlake.profiles.indexer import embedded_store
from rfmlake.profiles.local import curl_hint


def test_index_builds_a_new_generation_and_keeps_two(served, capsys):
    lake = served["lake"]
    before = embedded_store(lake).active_generation()
    assert main(["profiles", "index", "--lake", str(lake.root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profiles"] == 40 and report["generation"] != before
    assert main(["profiles", "index", "--lake", str(lake.root), "--keep", "1"]) == 0
    store = embedded_store(lake)
    assert store.generations() == [store.active_generation()]


def test_create_key_prints_the_key_once(served, capsys):
    assert main(["profiles", "create-key", "--lake", str(served["lake"].root), "--name", "cli-test"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("rfk_") and key not in (served["lake"].system_dir / "api_keys.json").read_text()


def test_bad_arguments_are_one_clear_error(tmp_path, capsys):
    assert main(["profiles", "index", "--lake", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "lake").mkdir()
    assert main(["profiles", "index", "--lake", str(tmp_path / "lake")]) == 1
    err = capsys.readouterr().err
    assert "gold.dim_customers" in err and "Traceback" not in err
    assert main(["serve", "--lake", str(tmp_path / "lake"), "--port", "0"]) == 1
    assert "--port" in capsys.readouterr().err


def test_serve_without_keys_says_how_to_create_one(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RFMLAKE_API_KEYS", raising=False)
    (tmp_path / "lake").mkdir()
    assert main(["serve", "--lake", str(tmp_path / "lake"), "--port", "8765"]) == 1
    assert "rfmlake profiles create-key" in capsys.readouterr().err


def test_demo_hint_queries_a_real_profile(served):
    lines = curl_hint(served["lake"], "rfmlake")
    assert any("/profiles/C00000" in line and "X-API-Key" in line for line in lines)
