"""`rfmlake docs` serving and its errors (generation is tested on a pipeline lake in test_notebooks_run)."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import pytest

from rfmlake.analytics.dbt_docs import docs_server
from rfmlake.cli.main import main
from rfmlake.errors import RfmlakeError


def test_serves_the_folder_on_localhost(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>dbt docs</html>")
    server = docs_server(tmp_path, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as response:
            assert response.read() == b"<html>dbt docs</html>"
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_to_serve(tmp_path: Path) -> None:
    with pytest.raises(RfmlakeError, match="generate them first"):
        docs_server(tmp_path, port=0)


def test_no_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "--lake", str(tmp_path / "missing"), "--no-serve"]) == 1
    assert "no lake at" in capsys.readouterr().err


def test_lake_without_silver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lake").mkdir()
    assert main(["docs", "--lake", str(tmp_path / "lake"), "--no-serve"]) == 1
    assert "silver.orders" in capsys.readouterr().err
