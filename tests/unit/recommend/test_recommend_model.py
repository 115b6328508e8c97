"""rfmlake.recommend.model: what a customer is offered, on hand-built interactions."""

from __future__ import annotations

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
