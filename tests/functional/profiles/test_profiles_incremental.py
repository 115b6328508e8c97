"""The local indexer loads only what changed since the version the store holds, and the result is
the store a full load of the same table gives."""

from __future__ import annotations

import shutil

import pyarrow.compute as pc

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.profiles.build import write_profile_table
from rfmlake.profiles.embedded import EmbeddedProfileStore
from rfmlake.profiles.indexer import embedded_store, index_profiles
from rfmlake.profiles.store import ProfileQuery


def _all(store) -> list[dict]:
    docs, cursor = [], None
    while True:
        page = store.search(ProfileQuery(limit=500, cursor=cursor))
        docs += page.items
        if page.next_cursor is None:
            return docs
        cursor = page.next_cursor


def test_a_second_index_sends_only_the_changed_and_removed_profiles(served, tmp_path, capsys):
    lake = Lake(shutil.copytree(served["lake"].root, tmp_path / "lake"))
    assert index_profiles(lake, full=True).mode == "full"
    unchanged = index_profiles(lake)
    assert (unchanged.mode, unchanged.changed, unchanged.profiles) == ("incremental", 0, 40)

    dim = lake.read_arrow(lake.require("gold", "dim_customers"))
    dim = dim.filter(pc.not_equal(dim.column("customer_id"), "C00039"))  # gone from the CRM
    city = pc.if_else(pc.equal(dim.column("customer_id"), "C00005"), "Porto", dim.column("city"))
    lake.write_arrow("gold", "dim_customers", dim.set_column(dim.schema.get_field_index("city"), "city", city))

    assert main(["profiles", "index", "--lake", str(lake.root)]) == 0
    report = __import__("json").loads(capsys.readouterr().out)
    assert (report["mode"], report["changed"], report["profiles"]) == ("incremental", 2, 39)
    store = embedded_store(lake)
    assert store.get("C00005")["city"] == "Porto" and store.get("C00039") is None
    assert store.search(ProfileQuery(text="porto", limit=5)).items[0]["customer_id"] == "C00005"

    full = EmbeddedProfileStore(tmp_path / "full")
    index_profiles(lake, full, rebuild=False, full=True)
    assert _all(store) == _all(full)
    assert store.segments() == full.segments()


def test_a_store_whose_source_version_is_gone_is_loaded_whole(served, tmp_path):
    lake = Lake(shutil.copytree(served["lake"].root, tmp_path / "lake"))
    first = index_profiles(lake, full=True)
    indexed = lake.require("gold", "customer_profile").path
    write_profile_table(lake)
    shutil.rmtree(indexed)  # e.g. vacuumed while the indexer was down
    again = index_profiles(lake, rebuild=False)
    assert again.mode == "full" and again.profiles == first.profiles == 40


def test_when_most_profiles_changed_a_fresh_load_is_made_instead(served, tmp_path):
    lake = Lake(shutil.copytree(served["lake"].root, tmp_path / "lake"))
    index_profiles(lake, full=True)
    dim = lake.read_arrow(lake.require("gold", "dim_customers"))  # every city renamed: all 40 differ
    lake.write_arrow("gold", "dim_customers", dim.set_column(
        dim.schema.get_field_index("city"), "city", pc.utf8_upper(dim.column("city"))))
    report = index_profiles(lake)
    assert (report.mode, report.changed, report.profiles) == ("full", 40, 40)
    assert embedded_store(lake).get("C00001")["city"] == "BERLIN"
