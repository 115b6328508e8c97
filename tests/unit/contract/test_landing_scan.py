"""scan_landing: the layout of the landing folder, and one specific message per way it can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from rfmlake.contract.landing import scan_landing
from rfmlake.errors import LandingError
from rfmlake.lake.storage import Storage


def _file(path: Path, data: bytes = b"a,b\n1,2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_lists_entity_files_sorted_with_format_and_size(tmp_path: Path) -> None:
    _file(tmp_path / "orders" / "b.csv")
    _file(tmp_path / "orders" / "2024" / "a.jsonl", b'{"order_id": "1"}\n')
    _file(tmp_path / "access_logs" / "web.log", b"")
    _file(tmp_path / "products" / "p.parquet", b"PAR1....PAR1")
    _file(tmp_path / "_generator_manifest.json", b"{}")
    _file(tmp_path / ".DS_Store", b"x")
    _file(tmp_path / "orders" / ".hidden.csv")

    files = scan_landing(tmp_path)

    assert [(f.entity, f.relative_path, f.format) for f in files] == [
        ("access_logs", "access_logs/web.log", "text"),
        ("orders", "orders/2024/a.jsonl", "json"),
        ("orders", "orders/b.csv", "csv"),
        ("products", "products/p.parquet", "parquet"),
    ]
    assert files[0].size == 0 and files[0].is_empty
    assert files[2].size == 8 and files[2].path == (tmp_path / "orders" / "b.csv").resolve()


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match=r"landing folder .*nowhere does not exist"):
        scan_landing(tmp_path / "nowhere")


def test_empty_input(tmp_path: Path) -> None:
    (tmp_path / "orders").mkdir()
    _file(tmp_path / "_generator_manifest.json", b"{}")
    with pytest.raises(LandingError, match="empty input: .* holds no entity files"):
        scan_landing(tmp_path)


@pytest.mark.parametrize("name,kind", [("invoices", "folder"), ("notes.txt", "file")])
def test_unknown_entity_names_it_and_lists_known(tmp_path: Path, name: str, kind: str) -> None:
    _file(tmp_path / "orders" / "a.csv")
    if kind == "folder":
        _file(tmp_path / name / "a.csv")
    else:
        _file(tmp_path / name)
    with pytest.raises(LandingError) as error:
        scan_landing(tmp_path)
    message = str(error.value)
    assert f"unknown entity {kind} '{name}'" in message
    assert "customers, events, order_items, orders, products" in message


def test_extension_not_allowed_for_entity(tmp_path: Path) -> None:
    _file(tmp_path / "access_logs" / "web.csv")
    with pytest.raises(LandingError, match=r"access_logs/web.csv has extension '.csv'.*allowed: .log, .txt"):
        scan_landing(tmp_path)
    (tmp_path / "access_logs" / "web.csv").unlink()
    _file(tmp_path / "orders" / "orders.xlsx")
    with pytest.raises(LandingError, match=r"orders/orders.xlsx has extension '.xlsx'.*allowed: .csv, .json"):
        scan_landing(tmp_path)


def test_fake_parquet_is_reported(tmp_path: Path) -> None:
    _file(tmp_path / "orders" / "o.parquet", b"order_id\n1\n")
    with pytest.raises(LandingError, match=r"orders/o.parquet is not a Parquet file"):
        scan_landing(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = _file(tmp_path / "orders" / "o.csv")
    path.chmod(0)
    try:
        with pytest.raises(LandingError, match=r"orders/o.csv is not readable \(permission denied\)"):
            scan_landing(tmp_path)
    finally:
        path.chmod(0o644)


class _DenyingFileSystem:
    """The local filesystem, except that opening one file is refused (as for a user without rights)."""

    def __init__(self, denied: Path) -> None:
        self._fs = pafs.LocalFileSystem()
        self._denied = str(denied.resolve())

    def __getattr__(self, name: str) -> object:
        return getattr(self._fs, name)

    def open_input_file(self, path: str) -> object:
        if path == self._denied:
            raise PermissionError(13, "Permission denied")
        return self._fs.open_input_file(path)


def test_unreadable_file_is_reported_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _file(tmp_path / "orders" / "o.csv")
    monkeypatch.setattr(Storage, "for_location", classmethod(lambda cls, *a, **k: cls(_DenyingFileSystem(path), False)))
    with pytest.raises(LandingError, match=r"orders/o.csv is not readable \(permission denied\)"):
        scan_landing(tmp_path)


def test_file_location_and_local_path(tmp_path: Path) -> None:
    path = _file(tmp_path / "orders" / "o.csv")
    (landed,) = scan_landing(tmp_path)
    assert landed.uri == str(path.resolve()) and landed.path == path.resolve()


def test_short_parquet_is_not_parquet(tmp_path: Path) -> None:
    _file(tmp_path / "orders" / "o.parquet", b"PA")
    with pytest.raises(LandingError, match=r"orders/o.parquet is not a Parquet file"):
        scan_landing(tmp_path)


def test_a_file_is_not_a_landing_folder(tmp_path: Path) -> None:
    path = _file(tmp_path / "orders.csv")
    with pytest.raises(LandingError, match=r"landing folder .*orders.csv is not a folder"):
        scan_landing(path)
