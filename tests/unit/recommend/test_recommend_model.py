"""rfmlake.recommend.model: what a customer is offered, on hand-built interactions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfmlake.recommend.model import ItemSimilarityRecommender, PopularityRecommender

PRODUCTS = pd.DataFrame({
    "product_id": ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "T1"],
    "category": ["Audio", "Audio", "Audio", "Audio", "Books", "Books", "Books", "Toys"],
    "brand": ["x", "x", "y", "y", "z", "z", "z", "w"],
})


def interactions(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "kind"])


def buys(customer: str, *products: str) -> list[tuple[str, str, str]]:
    return [(customer, p, "purchase") for p in products]


# Readers who bought B1 also bought B2; T1 is bought by everyone (the popular product).
HISTORY = interactions(
    buys("c1", "B1", "B2", "T1") + buys("c2", "B1", "B2", "T1") + buys("c3", "B1", "B2", "T1")
    + buys("c4", "A1", "T1") + buys("c5", "A1", "A2") + buys("c6", "T1") + buys("c7", "T1", "A3")
    + buys("reader", "B1")
)


def lists(frame: pd.DataFrame) -> dict[str, list[str]]:
    return frame.sort_values(["customer_id", "rank"]).groupby("customer_id")["product_id"].agg(list).to_dict()


def test_a_customer_is_offered_what_buyers_of_their_products_also_bought_never_what_they_bought() -> None:
    model = ItemSimilarityRecommender(category_weight=0, brand_weight=0).fit(HISTORY, PRODUCTS)
    recs = model.recommend(["reader", "c4"], n=3)
    got = lists(recs)
    assert got["reader"][0] == "B2"          # every other buyer of B1 bought B2
    assert "B1" not in got["reader"]
    assert not {"A1", "T1"} & set(got["c4"])
    assert got["c4"][0] == "A2"              # A1's other buyer bought A2
    assert recs.groupby("customer_id")["rank"].agg(list).to_dict() == {"c4": [1, 2, 3], "reader": [1, 2, 3]}


def test_category_and_brand_co_purchase_reach_products_nobody_bought_together() -> None:
    # B3 was only ever bought with a toy, but Books buyers buy other Books: the category term finds it.
    history = interactions(buys("c1", "B1", "B2") + buys("c2", "B2", "B1") + buys("c3", "B3", "T1")
                           + buys("fan", "B1"))

    def similar(model: ItemSimilarityRecommender) -> list[str]:
        recs = model.fit(history, PRODUCTS).recommend(["fan"], n=3)
        return recs[recs.source == "similar_items"]["product_id"].tolist()

    assert "B3" in similar(ItemSimilarityRecommender(category_weight=3, brand_weight=0))
    assert similar(ItemSimilarityRecommender(category_weight=0, brand_weight=0)) == ["B2"]


def test_views_count_with_their_weight_and_only_purchases_are_excluded() -> None:
    history = pd.concat([HISTORY, interactions([("viewer", "A1", "view"), ("viewer", "A1", "view")])])
    model = ItemSimilarityRecommender(category_weight=0, brand_weight=0).fit(history, PRODUCTS)
    got = lists(model.recommend(["viewer"], n=3))["viewer"]
    assert got[0] in {"A2", "T1"}            # products A1's buyers also bought
    no_views = ItemSimilarityRecommender(view_weight=0.0, category_weight=0, brand_weight=0).fit(history, PRODUCTS)
    assert set(no_views.recommend(["viewer"], n=3)["source"]) == {"popular"}


def test_at_most_max_per_category_while_other_categories_have_candidates() -> None:
    history = interactions(
        buys("c1", "A1", "A2", "A3", "A4", "B1") + buys("c2", "A1", "A2", "A3", "A4", "B2")
        + buys("fan", "A1") + buys("c3", "T1", "B3"))
    capped = ItemSimilarityRecommender(max_per_category=2).fit(history, PRODUCTS)
    got = lists(capped.recommend(["fan"], n=4))["fan"]
    categories = PRODUCTS.set_index("product_id").loc[got, "category"].tolist()
    assert categories.count("Audio") == 2 and len(got) == 4
    uncapped = ItemSimilarityRecommender(max_per_category=None).fit(history, PRODUCTS)
    got = lists(uncapped.recommend(["fan"], n=4))["fan"]
    assert PRODUCTS.set_index("product_id").loc[got, "category"].tolist().count("Audio") == 3


def test_cold_start_gets_the_popular_products_of_the_segment_else_of_everyone() -> None:
    segments = {"c4": "Champions", "c5": "Champions", "c6": "Lost", "newcomer": "Champions"}
    model = ItemSimilarityRecommender().fit(HISTORY, PRODUCTS, segments)
    recs = model.recommend(["newcomer", "stranger"], n=2)
    got = lists(recs)
    assert got["newcomer"][0] == "A1"        # both Champions bought A1
    assert set(recs[recs.customer_id == "newcomer"]["source"]) == {"segment_popular"}
    assert got["stranger"][0] == "T1"        # what most customers bought
    assert set(recs[recs.customer_id == "stranger"]["source"]) == {"popular"}


def test_a_short_list_is_topped_up_from_popularity_and_results_are_deterministic() -> None:
    model = ItemSimilarityRecommender(category_weight=0, brand_weight=0).fit(HISTORY, PRODUCTS)
    recs = model.recommend(["reader"], n=5)
    assert len(recs) == 5 and recs["product_id"].is_unique
    assert "popular" in set(recs["source"])
    pd.testing.assert_frame_equal(recs, ItemSimilarityRecommender(category_weight=0, brand_weight=0)
                                  .fit(HISTORY.sample(frac=1, random_state=3), PRODUCTS).recommend(["reader"], n=5))


def test_batches_give_the_same_lists_as_one_pass() -> None:
    customers = sorted(HISTORY["customer_id"].unique())
    one = ItemSimilarityRecommender().fit(HISTORY, PRODUCTS).recommend(customers, n=3)
    tiny = ItemSimilarityRecommender(batch_cells=len(PRODUCTS) * 2).fit(HISTORY, PRODUCTS)
    assert len(list(tiny.iter_recommendations(customers, 3))) == (len(customers) + 1) // 2
    pd.testing.assert_frame_equal(one, tiny.recommend(customers, n=3))


def test_popularity_baseline_offers_the_most_bought_products_not_yet_bought() -> None:
    baseline = PopularityRecommender().fit(HISTORY, PRODUCTS)
    got = lists(baseline.recommend(["c6", "stranger"], n=2))
    assert got["stranger"] == ["T1", "B1"]
    assert got["c6"] == ["B1", "B2"]


def test_products_missing_from_the_catalogue_are_still_recommendable() -> None:
    history = pd.concat([HISTORY, interactions(buys("c8", "Z9") + buys("c9", "Z9"))])
    model = ItemSimilarityRecommender().fit(history, PRODUCTS.iloc[:0])
    assert "Z9" in set(model.recommend(["stranger"], n=8)["product_id"])


@pytest.mark.parametrize("kwargs, rows, message", [
    ({}, [("c1", "A1", "click")], "interaction kind"),
    ({"view_weight": 2.0}, [("c1", "A1", "purchase")], "view_weight"),
    ({"alpha": 0.2}, [("c1", "A1", "purchase")], "alpha"),
    ({"n_neighbors": 0}, [("c1", "A1", "purchase")], "n_neighbors"),
])
def test_bad_parameters_and_inputs_are_named(kwargs: dict, rows: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ItemSimilarityRecommender(**kwargs).fit(interactions(rows), PRODUCTS)


def test_ties_go_to_the_lower_product_id_and_a_dry_list_ends_with_what_the_cap_set_aside() -> None:
    # B2 and B3 were each bought once with B1 (equal scores for the reader of B1); A2, A3, B2 and B3
    # have one buyer each (equally popular). With one product per category, the reader's similar
    # items run short, so B3 follows B2 past the cap; the popularity fill counts them against the cap
    # and, its list run dry, ends with the first product it set aside.
    history = interactions(buys("c1", "B1", "B2") + buys("c2", "B1", "B3") + buys("c3", "A1") + buys("c4", "A1")
                           + buys("c5", "A3") + buys("c6", "A2") + buys("reader", "B1"))
    model = ItemSimilarityRecommender(category_weight=0, brand_weight=0, max_per_category=1).fit(history, PRODUCTS)
    got = model.recommend(["reader", "stranger"], n=4)
    reader, stranger = got[got.customer_id == "reader"], got[got.customer_id == "stranger"]
    assert reader["product_id"].tolist() == ["B2", "B3", "A1", "A2"]
    assert reader["source"].tolist() == ["similar_items", "similar_items", "popular", "popular"]
    assert reader["score"].iloc[0] == reader["score"].iloc[1]
    assert stranger["product_id"].tolist() == ["B1", "A1", "A2", "A3"]   # B2, B3 set aside after A2, A3
    assert stranger["rank"].tolist() == [1, 2, 3, 4]


def walk_one_by_one(model: ItemSimilarityRecommender, customers: list[str], n: int
                    ) -> dict[str, list[tuple[str, float, str]]]:
    """The lists as the docstrings state them, one customer at a time: the model's scored candidates
    (scored in one batch, as recommend() does for few customers) by score, ties by product, at most
    max_per_category of a category and then the rest, topped up by walking down the popularity list."""
    cap = model.max_per_category or n
    codes = model.catalogue_.category_code
    rows = model._customer_rows(customers)
    known = rows[rows >= 0]
    batch_row, items, scores = model._scores(known, model._pool(model.pool_factor * n), n * 4)
    lists = {}
    for customer, row in zip(customers, rows, strict=True):
        picks: list[tuple[int, float, str]] = []
        if row >= 0:
            mine = known[batch_row] == row
            seen: dict[int, int] = {}
            capped, rest = [], []
            for negative, item in sorted((-s, int(i)) for i, s in zip(items[mine], scores[mine], strict=True) if s > 0):
                seen[codes[item]] = seen.get(codes[item], 0) + 1
                (capped if seen[codes[item]] <= cap else rest).append((item, -negative, "similar_items"))
            picks = (capped + rest)[:n]
        ranked, ranked_scores, source = model.segment_lists_.get(model.segment_of_.get(customer),
                                                                 model.segment_lists_[None])
        bought = set(model.purchased_[row].indices) if row >= 0 else set()
        per_category: dict[int, int] = {}
        for item, _, _ in picks:
            per_category[codes[item]] = per_category.get(codes[item], 0) + 1
        aside = []
        for item, score in zip(ranked, ranked_scores, strict=True):
            if len(picks) >= n:
                break
            if item in bought or item in {p[0] for p in picks}:
                continue
            if per_category.get(codes[item], 0) >= cap:
                aside.append((int(item), float(score), source))
                continue
            per_category[codes[item]] = per_category.get(codes[item], 0) + 1
            picks.append((int(item), float(score), source))
        picks += aside[: n - len(picks)]
        lists[customer] = [(model.catalogue_.ids[item], float(score), source) for item, score, source in picks]
    return lists


@pytest.mark.parametrize("seed", range(12))
def test_the_batched_lists_are_the_walk_customer_by_customer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({"product_id": [f"P{i:02d}" for i in range(30)],
                             "category": [f"c{i % 3}" for i in range(30)], "brand": [f"b{i % 4}" for i in range(30)]})
    history = interactions([(f"C{c:02d}", f"P{p % 30:02d}", kind) for c, p, kind in zip(
        rng.integers(0, 40, 300), rng.zipf(1.5, 300), rng.choice(["purchase", "view"], 300, p=[0.8, 0.2]),
        strict=True)])
    segments = {f"C{c:02d}": str(rng.choice(["Champions", "Lost"])) for c in range(0, 45, 2)}
    n = int(rng.integers(2, 9))
    model = ItemSimilarityRecommender(max_per_category=int(rng.integers(1, 4)),
                                      depth=int(rng.choice([5, 500]))).fit(history, products, segments)
    customers = [f"C{c:02d}" for c in range(45)]
    got = model.recommend(customers, n=n)
    expected = walk_one_by_one(model, customers, n)
    for customer in customers:
        mine = got[got.customer_id == customer]
        assert mine["rank"].tolist() == list(range(1, len(mine) + 1))
        assert list(zip(mine["product_id"], mine["score"], mine["source"], strict=True)) == expected[customer]


def test_a_stored_fit_scores_history_it_is_given_as_the_fitted_model_scores_its_own(tmp_path) -> None:
    segments = {"c1": "loyal", "c2": "loyal", "c4": "new", "c5": "new", "c6": "new", "stranger": "loyal"}
    fitted = ItemSimilarityRecommender(max_per_category=2).fit(HISTORY, PRODUCTS, segments)
    people = ["c1", "c3", "c5", "reader", "stranger", "nobody"]
    expected = fitted.recommend(people, n=5)
    fitted.save(tmp_path / "fit", {"model_version": "rec-test"})
    stored, document = ItemSimilarityRecommender.load(tmp_path / "fit")
    assert document["model_version"] == "rec-test" and stored.digest() == fitted.digest()
    stored.set_history(HISTORY, segments)
    pd.testing.assert_frame_equal(stored.recommend(people, n=5), expected)
    # one person at a time, from only their own history: the same rows (no batch effect)
    for person in people:
        alone = stored.set_history(HISTORY[HISTORY["customer_id"] == person], segments).recommend([person], n=5)
        pd.testing.assert_frame_equal(alone, expected[expected["customer_id"] == person].reset_index(drop=True))


def test_a_stored_fit_leaves_out_products_it_never_saw_and_refuses_altered_files(tmp_path) -> None:
    fitted = ItemSimilarityRecommender().fit(HISTORY, PRODUCTS)
    fitted.save(tmp_path / "fit")
    stored, _ = ItemSimilarityRecommender.load(tmp_path / "fit")
    # a product new since the fit: unknown to the stored model, so it changes nothing
    stored.set_history(interactions(buys("reader", "B1") + buys("reader", "NEW")), {})
    known = stored.recommend(["reader"], n=4)
    stored.set_history(interactions(buys("reader", "B1")), {})
    pd.testing.assert_frame_equal(known, stored.recommend(["reader"], n=4))
    with np.load(tmp_path / "fit" / "model.npz") as arrays:
        altered = {name: arrays[name] for name in arrays.files}
    altered["popularity"] = altered["popularity"] + 1
    np.savez(tmp_path / "fit" / "model.npz", **altered)
    with pytest.raises(ValueError, match="does not match its digest"):
        ItemSimilarityRecommender.load(tmp_path / "fit")


def test_a_persons_list_is_the_same_scored_alone_or_in_a_batch() -> None:
    """Bit for bit: the stage scores only the changed people between fits (a batch of one, perhaps)
    and must write what scoring everyone would. A dense BLAS product of one row (gemv) and of many
    (gemm) differ in the last bits; the model's products are sparse, row by row."""
    rng = np.random.default_rng(7)
    products = pd.DataFrame({"product_id": [f"p{i:03d}" for i in range(120)],
                             "category": [f"cat{i % 30}" for i in range(120)],
                             "brand": [f"brand{(i * 7) % 25}" for i in range(120)]})
    rows = [(f"c{c:03d}", f"p{p:03d}", "purchase" if rng.random() < 0.6 else "view")
            for c in range(300) for p in rng.choice(120, size=rng.integers(1, 12), replace=False)]
    history = interactions(rows)
    model = ItemSimilarityRecommender(view_weight=0.3).fit(history, products)
    people = [f"c{c:03d}" for c in range(0, 300, 3)]
    together = model.recommend(people, n=10)
    alone = pd.concat([model.recommend([person], n=10) for person in people], ignore_index=True)
    pd.testing.assert_frame_equal(alone, together, check_exact=True)
