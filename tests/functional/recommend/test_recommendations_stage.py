"""The recommendations stage on a seeded generated landing (20,000 order lines, the generator's
planted category and brand affinities): the model beats the popularity baseline on the time split by
an interval above zero, every customer gets a list that leaves out what they bought, and the report,
recommendations_for (what journeys fill their templates from; a journey's email naming a customer's
products: tests/functional/journeys/test_engagement_journeys.py) and the run summary show it. The
run is the `run` fixture (conftest.py)."""

from __future__ import annotations

import json

import pytest

from rfmlake.lake.catalog import connect
from rfmlake.recommend import recommendations_for
from rfmlake.reporting import build_quality_report, render_html

pytestmark = pytest.mark.slow


def test_the_model_beats_popularity_on_ndcg_and_recall_with_an_interval_above_zero(run) -> None:
    _, _, report = run
    evaluation = report["evaluation"]
    assert evaluation["customers"] >= 300
    for metric in ("ndcg@10", "recall@10"):
        m = evaluation["metrics"][metric]
        assert m["model"] > m["baseline"], (metric, m)
        assert 0 < m["ci_low"] <= m["difference"] <= m["ci_high"], (metric, m)
    assert evaluation["model_beats_baseline"]["ndcg"] and evaluation["model_beats_baseline"]["recall"]
    coverage = evaluation["metrics"]["coverage"]
    assert coverage["model"] > 2 * coverage["baseline"]


def test_every_customer_gets_n_products_they_have_not_bought(run) -> None:
    lake, _, report = run
    con = connect(lake, zones=("silver", "gold"))
    try:
        customers = con.execute("select count(*) from (select customer_id from gold.dim_customers "
                                "union select customer_id from gold.customer_rfm)").fetchone()[0]
        per_customer = con.execute("""
            select count(*) as n, count(distinct product_id) as products, min(rank), max(rank)
            from gold.product_recommendations group by customer_id""").fetchall()
        already_bought = con.execute("""
            select count(*) from gold.product_recommendations as r
            join gold.fct_orders as o on o.customer_id = r.customer_id and o.status = 'completed'
            join silver.order_items as i on i.order_id = o.order_id and i.product_id = r.product_id""").fetchone()[0]
        over_cap = con.execute("""
            select count(distinct customer_id) from (
                select customer_id, category from gold.product_recommendations
                group by customer_id, category having count(*) > 4)""").fetchone()[0]
        sources = dict(con.execute("select source, count(distinct customer_id) from gold.product_recommendations "
                                   "group by 1").fetchall())
        named = con.execute("select count(*) from gold.product_recommendations where product_name is null "
                            "or category is null").fetchone()[0]
    finally:
        con.close()
    assert len(per_customer) == customers == report["customers"]
    assert set(per_customer) == {(10, 10, 1, 10)}
    assert already_bought == 0
    assert over_cap <= 0.01 * customers          # diversity: at most 4 of a category, barring short lists
    assert sources["similar_items"] > customers / 2
    assert sources["popular"] > 0                 # CRM customers who never ordered: the cold start
    assert named == 0


def test_recommendations_for_reads_a_customers_list_best_first(run) -> None:
    lake, _, _ = run
    con = connect(lake, zones=("gold",))
    try:
        customer, first = con.execute("select customer_id, product_id from gold.product_recommendations "
                                      "where rank = 1 order by customer_id limit 1").fetchone()
    finally:
        con.close()
    got = recommendations_for(lake, [customer, "nobody-such"], n=3)
    assert list(got) == [customer, "nobody-such"] and got["nobody-such"] == []
    assert [item["rank"] for item in got[customer]] == [1, 2, 3]
    assert got[customer][0]["product_id"] == first
    assert set(got[customer][0]) == {"rank", "product_id", "product_name", "category", "brand", "score", "source"}


def test_the_quality_report_and_the_run_summary_carry_the_evaluation(run) -> None:
    lake, run_dir, report = run
    quality = build_quality_report(lake.root, run_dir)
    assert quality["recommendations"]["evaluation"]["metrics"] == report["evaluation"]["metrics"]
    page = render_html(quality)
    section = page[page.index('<section id="recommendations">'):]
    section = section[:section.index("</section>")]
    ndcg = report["evaluation"]["metrics"]["ndcg@10"]
    assert f'{ndcg["ci_low"]:.4f} .. {ndcg["ci_high"]:.4f}' in section and "<svg" in section
    summary = json.loads((run_dir / "summary.json").read_text())
    stage = next(s for s in summary["stages"] if s["name"] == "recommendations")
    assert stage["status"] == "succeeded"
    assert stage["summary"]["evaluation"]["ndcg@10"]["model"] == report["evaluation"]["metrics"]["ndcg@10"]["model"]
