"""On generated data with planted duplicates (rfmlake.generate.identity), one `rfmlake run`, then
`rfmlake report`: the quality report measures merge precision and recall against the generator's
ground truth, and they meet the targets (precision >= 0.99, recall >= 0.90). A duplicated buyer's
orders under both ids count as one person's R/F/M."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rfmlake.cli.main import main
from rfmlake.generate import generate_landing
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("identity_quality")
    generate_landing(root / "landing", order_lines=12_000, seed=5)
    assert main(["run", "--input", str(root / "landing"), "--lake", str(root / "lake")]) == 0
    out = root / "report.html"
    assert main(["report", "--lake", str(root / "lake"), "--out", str(out)]) == 0
    document = json.loads(next((root / "lake" / "_system" / "runs").glob("*/segmentation_quality.json")).read_text())
    truth = json.loads((root / "landing" / "_identity_truth.json").read_text())
    return {"root": root, "lake": Lake(root / "lake"), "report": document, "html": out.read_text(), "truth": truth}


def test_merge_precision_and_recall_meet_the_targets(reported: dict[str, Any]) -> None:
    identity = reported["report"]["identity"]
    merges = identity["merges"]
    assert identity["truth_file"].endswith("_identity_truth.json")
    assert merges["planted_pairs"] == len(reported["truth"]["duplicate_customer_pairs"]) >= 50
    assert merges["precision"] >= 0.99, merges["wrong_merges"]
    assert merges["recall"] >= 0.90, merges["missed_pairs"]
    assert merges["device_recall"] >= 0.90
    assert merges["shared_devices_kept_apart"] == merges["shared_devices"] > 0
    stage = identity["stage"]
    assert stage["model_trained"] and stage["people_with_several_customer_ids"] >= 0.9 * merges["planted_pairs"]
    # the same figures on the page
    html = reported["html"]
    assert 'id="identity"' in html and "against ground truth" in html
    assert f"{merges['precision']:.3f}" in html and f"{merges['recall']:.3f}" in html


def test_a_duplicated_buyer_is_one_person_with_one_rfm_row(reported: dict[str, Any]) -> None:
    lake: Lake = reported["lake"]
    con = connect(lake)
    pairs = reported["truth"]["duplicate_customer_pairs"]
    split = con.execute("""
        SELECT o.customer_id FROM silver.orders o WHERE o.status = 'completed' GROUP BY 1""").fetchall()
    buyers = {r[0] for r in split}
    both = [(a, b) for a, b in pairs if a in buyers and b in buyers]
    assert both, "the generator placed some duplicates' later orders under their second id"
    original, duplicate = both[0]
    rows = con.execute("SELECT customer_id, person_id, frequency, customer_ids FROM gold.customer_rfm_features "
                       "WHERE customer_id IN (?, ?)", [original, duplicate]).fetchall()
    orders = con.execute("SELECT count(DISTINCT order_id) FROM gold.fct_orders WHERE is_rfm_counted "
                         "AND order_customer_id IN (?, ?)", [original, duplicate]).fetchone()[0]
    assert len(rows) == 1 and rows[0][0] == original and rows[0][2] == orders and rows[0][3] == 2
    rfm = con.execute("SELECT count(*) FROM gold.customer_rfm WHERE customer_id IN (?, ?)",
                      [original, duplicate]).fetchone()[0]
    assert rfm == 1
    profile = con.execute("SELECT customer_ids_json, person_id FROM gold.customer_profile WHERE customer_id = ?",
                          [original]).fetchone()
    assert json.loads(profile[0]) == sorted([original, duplicate]) and profile[1] == rows[0][1]
    assert con.execute("SELECT count(*) FROM gold.customer_profile WHERE customer_id = ?", [duplicate]).fetchone()[0] == 0
