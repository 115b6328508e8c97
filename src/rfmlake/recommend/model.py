"""Recommenders, the scikit-learn way (parameters in __init__, fit returns self, learned state in
attributes ending in _, recommend never refits).

ItemSimilarityRecommender: item-to-item cosine similarity over who bought and who viewed what
(co-purchase and co-view by the same customer), each customer's top-N the sum of the similarities
of their history, products they bought excluded, at most `max_per_category` per category, and the
popularity of their RFM segment (else of everyone) filling what similarity leaves empty: the cold
start. PopularityRecommender: the most bought products, the baseline the first is measured against.

Everything is sparse matrix algebra (scipy) plus vectorized ranking, in batches of customers, so
memory is bounded by the catalogue's similarity matrix and one batch (docs/adr: recommendations).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

PURCHASE = "purchase"
VIEW = "view"
SOURCE_SIMILAR = "similar_items"
SOURCE_SEGMENT = "segment_popular"
SOURCE_POPULAR = "popular"
UNKNOWN_CATEGORY = "(none)"
RECOMMENDATION_COLUMNS = ("customer_id", "rank", "product_id", "score", "source")
MODEL_ARRAYS = "model.npz"    # a stored fit's arrays (ItemSimilarityRecommender.save)
MODEL_FILE = "model.json"     # its parameters, popularity lists and digest, written last


def _check_interactions(interactions: pd.DataFrame) -> None:
    missing = {"customer_id", "product_id", "kind"} - set(interactions.columns)
    if missing:
        raise ValueError(f"interactions need the columns customer_id, product_id, kind; missing {sorted(missing)}")
    kinds = set(interactions["kind"].unique()) - {PURCHASE, VIEW}
    if kinds:
        raise ValueError(f"interaction kind must be {PURCHASE!r} or {VIEW!r}, got {sorted(kinds)}")


@dataclass(frozen=True)
class _Picks:
    """Similar-item picks of known customer rows, flat: grouped by owner (ascending), best first."""

    owner: np.ndarray
    item: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls) -> _Picks:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass(frozen=True)
class _Fills:
    """Popularity picks, flat: owner (batch position), slot after the owner's similar-item picks,
    item, the popularity list it came from and its position there."""

    owner: np.ndarray
    slot: np.ndarray
    item: np.ndarray
    source: np.ndarray
    position: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence[_Fills]) -> _Fills:
        return cls(*(np.concatenate([np.empty(0, dtype=np.int64), *(getattr(p, name) for p in parts)]).astype(np.int64)
                     for name in ("owner", "slot", "item", "source", "position")))


@dataclass(frozen=True)
class _Walk:
    """One walk down popularity lists (_Recommender._fill_from_lists): the products a customer may
    not be offered (owner * n_items + item) and the categories of their picks (owner * n_categories
    + category), owners being batch positions."""

    n: int
    cap: int
    n_items: int
    n_categories: int
    codes: np.ndarray
    excluded: np.ndarray
    held_categories: np.ndarray

    def run(self, owners: np.ndarray, have: np.ndarray, list_of: np.ndarray, list_items: np.ndarray,
            exhausted: bool) -> tuple[_Fills, np.ndarray]:
        """The walk on a prefix of the lists (all of them when `exhausted`): the picks of the
        customers it settles (slot counted after their held picks), and which it settled."""
        m, width = len(owners), list_items.shape[1]
        local = np.repeat(np.arange(m), width)
        item = list_items[list_of].ravel()  # -1 past a list's end
        valid = item >= 0
        item = np.where(valid, item, 0)
        owner = owners[local].astype(np.int64)
        eligible = valid & ~np.isin(owner * self.n_items + item, self.excluded)
        category = owner * self.n_categories + self.codes[item]
        # taken while fewer than cap of its category are: held picks and the walk's earlier takes
        taken = eligible & (_count_of(self.held_categories, category) + _rank_within(category, eligible) < self.cap)
        need = self.n - have
        taken_before = _cumcount(local, taken)
        taken &= taken_before < need[local]
        n_taken = np.bincount(local[taken], minlength=m)
        full = n_taken >= need
        settled = full | exhausted
        # a list that ran dry: the products set aside at the cap follow, in list order
        aside = eligible & ~taken & ~full[local] & exhausted
        aside_before = _cumcount(local, aside)
        aside &= aside_before < (need - n_taken)[local]
        keep = (taken | aside) & settled[local]
        slot = np.where(taken, taken_before, n_taken[local] + aside_before)
        position = np.tile(np.arange(width), m)
        return _Fills(owners[local[keep]], slot[keep], item[keep], list_of[local[keep]], position[keep]), settled


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, offset) of each entry when owner i has counts[i] entries: [0, 0, 1] and [0, 1, 0] for [2, 1]."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _cumcount(group: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries of its group are in mask (groups contiguous, ascending)."""
    exclusive = np.cumsum(mask, dtype=np.int64) - mask
    return exclusive - exclusive[np.searchsorted(group, group, side="left")]


def _rank_within(keys: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries with its key are in mask (keys in any order)."""
    order = np.argsort(keys, kind="stable")
    ranked = np.empty(len(keys), dtype=np.int64)
    ranked[order] = _cumcount(keys[order], mask[order])
    return ranked


def _count_of(values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """How often each query value occurs in values."""
    unique, counts = np.unique(values, return_counts=True)
    if not len(unique):
        return np.zeros(len(query), dtype=np.int64)
    found = np.minimum(np.searchsorted(unique, query), len(unique) - 1)
    return np.where(unique[found] == query, counts[found], 0)


def _best_first(row: np.ndarray, score: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The order by row, score descending, then item: the same as np.lexsort((item, -score, row)),
    in about half the time, by sorting (row, the score's rank) as one integer key."""
    by_score = np.argsort(-score)  # equal scores share a rank, so their order here does not matter
    ordered = score[by_score]
    steps = np.zeros(len(score), dtype=np.int64)
    steps[1:] = ordered[1:] != ordered[:-1]
    rank = np.empty(len(score), dtype=np.int64)
    rank[by_score] = np.cumsum(steps)
    return np.lexsort((item, row.astype(np.int64) * max(1, len(score)) + rank))


def _pad(items: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ranked lists as one matrix each of items (-1 past a list's end) and scores."""
    width = max((len(i) for i in items), default=0)
    item_matrix = np.full((len(items), width), -1, dtype=np.int64)
    score_matrix = np.zeros((len(items), width), dtype=np.float64)
    for i, (ranked, score) in enumerate(zip(items, scores, strict=True)):
        item_matrix[i, :len(ranked)] = ranked
        score_matrix[i, :len(score)] = score
    return item_matrix, score_matrix


@dataclass(frozen=True)
class _Catalogue:
    """Products as matrix columns: the ids and their category and brand codes."""

    ids: pd.Index
    category_code: np.ndarray
    categories: pd.Index
    brand_code: np.ndarray
    brands: pd.Index

    @classmethod
    def build(cls, products: pd.DataFrame, interactions: pd.DataFrame) -> _Catalogue:
        columns = [c for c in ("product_id", "category", "brand") if c in products.columns]
        known = products[columns].drop_duplicates("product_id")
        extra = pd.Index(interactions["product_id"].unique()).difference(pd.Index(known["product_id"]))
        table = pd.concat([known, pd.DataFrame({"product_id": extra})], ignore_index=True)
        table = table.sort_values("product_id", kind="stable").reset_index(drop=True)
        for column in ("category", "brand"):
            if column not in table.columns:
                table[column] = None
        categories, category_names = pd.factorize(table["category"].fillna(UNKNOWN_CATEGORY), sort=True)
        brands, brand_names = pd.factorize(table["brand"].fillna(UNKNOWN_CATEGORY), sort=True)
        return cls(pd.Index(table["product_id"]), categories.astype(np.int32), pd.Index(category_names),
                   brands.astype(np.int32), pd.Index(brand_names))


class _Recommender:
    n_items_: int
    catalogue_: _Catalogue
    customers_: pd.Index
    purchased_: sp.csr_matrix

    def _index_customers(self, interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self.customers_ = pd.Index(np.sort(interactions["customer_id"].unique()))
        rows = self.customers_.get_indexer(interactions["customer_id"])
        cols = self.catalogue_.ids.get_indexer(interactions["product_id"])
        return rows, cols

    def _purchases(self, bought: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        """purchased_ from the interactions at (rows, cols) that are purchases (`bought`)."""
        matrix = sp.csr_matrix((np.ones(int(bought.sum()), dtype=np.float32), (rows[bought], cols[bought])),
                               shape=(len(self.customers_), self.n_items_))
        matrix.sum_duplicates()
        self.purchased_ = matrix

    def _popularity(self, purchased: sp.csr_matrix) -> np.ndarray:
        """Distinct buyers per product."""
        return np.asarray((purchased > 0).sum(axis=0), dtype=np.float64).ravel()

    def _ranked(self, popularity: np.ndarray) -> np.ndarray:
        """Products with at least one buyer, most bought first (ties by product id)."""
        order = np.lexsort((np.arange(len(popularity)), -popularity))
        return order[popularity[order] > 0]

    def _customer_rows(self, customer_ids: Sequence[str]) -> np.ndarray:
        return self.customers_.get_indexer(pd.Index(customer_ids))

    def _fill(self, customer_ids: Sequence[str], n: int, chosen: _Picks, rows: np.ndarray,
              lists: Mapping[str | None, tuple[np.ndarray, np.ndarray, str]],
              segment_of: Mapping[str, str]) -> pd.DataFrame:
        """Top up every customer's list to n from a popularity list (their segment's, else everyone's),
        skipping products they bought or already have, at most max_per_category per category (then
        without the cap if the list runs dry). `chosen` holds the picks of known customer rows,
        grouped by row. Returns the recommendations as a frame, customers in the given order."""
        names = list(lists)
        list_items, list_scores = _pad([lists[name][0] for name in names], [lists[name][1] for name in names])
        sources = np.array([lists[name][2] for name in names] + [SOURCE_SIMILAR], dtype=object)
        # each customer's picks so far: the chosen of their row (a customer listed twice gets them twice)
        first = np.searchsorted(chosen.owner, rows, side="left")
        counts = np.where(rows >= 0, np.searchsorted(chosen.owner, rows, side="right") - first, 0)
        pick_owner, pick_slot = _expand(counts)
        picks = _Picks(pick_owner, chosen.item[first[pick_owner] + pick_slot],
                       chosen.score[first[pick_owner] + pick_slot])
        short = np.flatnonzero(counts < n)
        by_name = {name: i for i, name in enumerate(names)}
        list_of = np.array([by_name.get(segment_of.get(customer_ids[i]), by_name[None])
                            for i in short], dtype=np.int64)
        fills = self._fill_from_lists(short, counts[short], list_of, n, rows, list_items, picks)
        owner = np.concatenate([picks.owner, fills.owner])
        slot = np.concatenate([pick_slot, counts[fills.owner] + fills.slot])
        item = np.concatenate([picks.item, fills.item])
        score = np.concatenate([picks.score, list_scores[fills.source, fills.position]])
        source = np.concatenate([np.full(len(picks.owner), len(names)), fills.source])
        order = np.lexsort((slot, owner))
        return pd.DataFrame({
            "customer_id": pd.Series(np.asarray(customer_ids, dtype=object)[owner[order]], dtype="object"),
            "rank": (slot[order] + 1).astype(np.int16),
            "product_id": pd.Series(self.catalogue_.ids.to_numpy()[item[order]], dtype="object"),
            "score": score[order].astype(np.float64),
            "source": pd.Series(sources[source[order]], dtype="object"),
        })

    def _fill_from_lists(self, owners: np.ndarray, have: np.ndarray, list_of: np.ndarray, n: int, rows: np.ndarray,
                         list_items: np.ndarray, picks: _Picks) -> _Fills:
        """The popularity picks of the customers at batch positions `owners`, who hold `have` < n
        picks, as a walk down their list (`list_of`: a row of list_items) takes them: in list order,
        skipping bought and held products, a product whose category is at the cap set aside, until
        n; then, if the list ran dry, the set-aside ones in list order. The walk is done on a prefix
        of the lists, doubled for the customers it did not settle, so a typical customer costs a few
        dozen entries instead of the list's depth."""
        codes = self.catalogue_.category_code
        customer_rows = rows[owners]
        known = customer_rows >= 0
        starts = np.zeros(len(owners), dtype=np.int64)
        stops = np.zeros(len(owners), dtype=np.int64)
        starts[known] = self.purchased_.indptr[customer_rows[known]]
        stops[known] = self.purchased_.indptr[customer_rows[known] + 1]
        bought_of, offset = _expand(stops - starts)
        held = np.isin(picks.owner, owners)
        walk = _Walk(
            n=n, cap=getattr(self, "max_per_category", None) or n, n_items=self.n_items_,
            n_categories=len(self.catalogue_.categories), codes=codes,
            excluded=np.concatenate([owners[bought_of].astype(np.int64) * self.n_items_
                                     + self.purchased_.indices[starts[bought_of] + offset],
                                     picks.owner[held].astype(np.int64) * self.n_items_ + picks.item[held]]),
            held_categories=picks.owner[held].astype(np.int64) * len(self.catalogue_.categories)
            + codes[picks.item[held]])
        done: list[_Fills] = []
        width = min(list_items.shape[1], 4 * n)
        pending = np.arange(len(owners))
        while len(pending):
            fills, settled = walk.run(owners[pending], have[pending], list_of[pending], list_items[:, :width],
                                      exhausted=width >= list_items.shape[1])
            done.append(fills)
            pending = pending[~settled]
            width *= 2
        return _Fills.concat(done)

    def _popularity_list(self, popularity: np.ndarray, source: str, depth: int) -> tuple[np.ndarray, np.ndarray, str]:
        ranked = self._ranked(popularity)[:depth]
        total = popularity.sum() or 1.0
        return ranked, popularity[ranked] / total, source


class PopularityRecommender(_Recommender):
    """The baseline: the products most customers bought, minus what the customer bought."""

    def __init__(self, depth: int = 500) -> None:
        self.depth = depth  # how far down the popularity list a customer's top-N may reach

    def fit(self, interactions: pd.DataFrame, products: pd.DataFrame) -> PopularityRecommender:
        _check_interactions(interactions)
        self.catalogue_ = _Catalogue.build(products, interactions)
        self.n_items_ = len(self.catalogue_.ids)
        rows, cols = self._index_customers(interactions)
        self._purchases((interactions["kind"] == PURCHASE).to_numpy(), rows, cols)
        self.popularity_ = self._popularity(self.purchased_)
        self.popular_ = self._popularity_list(self.popularity_, SOURCE_POPULAR, self.depth)
        return self

    def recommend(self, customer_ids: Sequence[str], n: int = 10) -> pd.DataFrame:
        customer_ids = list(customer_ids)
        return self._fill(customer_ids, n, _Picks.empty(), self._customer_rows(customer_ids),
                          {None: self.popular_}, {})


class ItemSimilarityRecommender(_Recommender):
    """Item-to-item similarity from co-purchase and co-view, per-customer top-N with category
    diversity and segment popularity as the cold-start fallback.

    The similarity of product j to a product i in a customer's history is learned from customers
    who interacted with both (a purchase weighs 1, a view `view_weight`), backed off to their
    categories and brands where products are too sparse to have co-buyers:

        sim(i, j) = P(j | i) + category_weight * P(cat j | cat i) * P(j | cat j)
                             + brand_weight * P(brand j | brand i) * P(j | brand j)

    P(j | i) is the share of i's customers who also had j (`alpha` < 1 moves it towards the cosine,
    which favours rare products); the category and brand terms are the same co-occurrence between
    groups, times j's share of its group's buyers. A customer's score for j is the sum over their
    history, products they bought are excluded, and at most `max_per_category` of one category
    enter their top n (the rest of the list follows by score)."""

    def __init__(self, n_neighbors: int = 50, view_weight: float = 0.5, max_per_category: int | None = 4,
                 category_weight: float = 3.0, brand_weight: float = 3.0, alpha: float = 1.0,
                 pool_factor: int = 5, batch_cells: int = 20_000_000, depth: int = 500) -> None:
        self.n_neighbors = n_neighbors
        self.view_weight = view_weight
        self.max_per_category = max_per_category
        self.category_weight = category_weight
        self.brand_weight = brand_weight
        self.alpha = alpha
        self.pool_factor = pool_factor  # each category's and brand's pool_factor * n most bought are candidates
        self.batch_cells = batch_cells  # customers x pooled products scored at once: bounds memory
        self.depth = depth

    def fit(self, interactions: pd.DataFrame, products: pd.DataFrame,
            segments: Mapping[str, str] | pd.Series | None = None) -> ItemSimilarityRecommender:
        """interactions: customer_id, product_id, kind ('purchase' | 'view'); products: product_id,
        category, brand; segments: customer_id -> RFM segment (the cold-start fallback's groups)."""
        _check_interactions(interactions)
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        if not 0.0 <= self.view_weight <= 1.0:
            raise ValueError(f"view_weight must be between 0 and 1, got {self.view_weight}")
        if not 0.5 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be between 0.5 (cosine) and 1 (P(j | i)), got {self.alpha}")
        self.catalogue_ = _Catalogue.build(products, interactions)
        self.n_items_ = len(self.catalogue_.ids)
        self.set_history(interactions, segments)
        history = self.history_
        self.similarity_ = self._similarity(history)
        self.category_affinity_, self.category_share_ = self._group_terms(history, self.catalogue_.category_code,
                                                                          len(self.catalogue_.categories))
        self.brand_affinity_, self.brand_share_ = self._group_terms(history, self.catalogue_.brand_code,
                                                                    len(self.catalogue_.brands))
        self.popularity_ = self._popularity(self.purchased_)
        self.segment_lists_: dict[str | None, tuple[np.ndarray, np.ndarray, str]] = {
            None: self._popularity_list(self.popularity_, SOURCE_POPULAR, self.depth)}
        if segments is not None:
            series = pd.Series(segments, dtype="object").dropna()
            known = series[series.index.isin(self.customers_)]
            for segment, members in known.groupby(known):
                member_rows = self.customers_.get_indexer(pd.Index(members.index))
                popularity = self._popularity(self.purchased_[member_rows])
                if popularity.sum() > 0:
                    self.segment_lists_[str(segment)] = self._popularity_list(popularity, SOURCE_SEGMENT, self.depth)
        return self

    def set_history(self, interactions: pd.DataFrame,
                    segments: Mapping[str, str] | pd.Series | None = None) -> ItemSimilarityRecommender:
        """The people to score and what they did (interactions: customer_id, product_id, kind), and
        their RFM segments (which popularity list fills their lists), against the fitted catalogue:
        what recommend() reads besides the fitted state, which this leaves as it is. fit() sets the
        history it learned from; a stored model (load) scores people by the history given here.
        Products the fitted catalogue lacks are left out: the model knows nothing of them."""
        _check_interactions(interactions)
        rows, cols = self._index_customers(interactions)
        known = cols >= 0
        bought = interactions["kind"].to_numpy()[known] == PURCHASE
        rows, cols = rows[known], cols[known]
        self._purchases(bought, rows, cols)
        # One weight per (customer, product): a purchase counts 1, a view view_weight, capped at 1
        # (a bought product weighs 1 however often it was bought or viewed).
        weight = np.where(bought, 1.0, self.view_weight).astype(np.float32)
        history = sp.coo_matrix((weight, (rows, cols)), shape=(len(self.customers_), self.n_items_)).tocsr()
        history.sum_duplicates()
        history.data = np.minimum(history.data, 1.0)
        history.eliminate_zeros()
        self.history_ = history
        self.segment_of_: dict[str, str] = {}
        if segments is not None:
            series = pd.Series(segments, dtype="object").dropna()
            self.segment_of_ = {str(k): str(v) for k, v in series.items()}
        return self

    def _similarity(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """co(i, j) / (n_i^(2 alpha) n_j^(2 - 2 alpha)) with n the norm of a product's customer
        vector (alpha 1: P(j | i); 0.5: the cosine), each product's n_neighbors best kept."""
        items = history.T.tocsr()
        squares = np.asarray(items.multiply(items).sum(axis=1)).ravel()
        squares[squares == 0] = 1.0
        co = (items @ items.T).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        score = co.data / (squares[co.row] ** self.alpha * squares[co.col] ** (1 - self.alpha))
        # top n_neighbors per row: sort by (row, -score), keep the first n of each row
        order = np.lexsort((co.col, -score, co.row))
        row, col, score = co.row[order], co.col[order], score[order]
        starts = np.searchsorted(row, np.arange(self.n_items_))
        position = np.arange(len(row)) - starts[row]
        keep = position < self.n_neighbors
        return sp.csr_matrix((score[keep].astype(np.float32), (row[keep], col[keep])),
                             shape=(self.n_items_, self.n_items_))

    def _group_terms(self, history: sp.csr_matrix, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """(P(group b | group a) as a groups x groups matrix, each product's share of its group's
        weight), from co-occurrence of different products by one customer."""
        onehot = sp.csr_matrix((np.ones(self.n_items_), (np.arange(self.n_items_), codes)),
                               shape=(self.n_items_, n_groups))
        per_group = (history @ onehot).tocsc()
        co = np.asarray((per_group.T @ per_group).todense(), dtype=np.float64)
        # a product with itself is no co-occurrence: take off each customer's own squares per group
        squares = history.multiply(history) @ onehot
        co -= np.diag(np.asarray(squares.sum(axis=0)).ravel())
        totals = co.sum(axis=1, keepdims=True)
        transition = np.divide(co, totals, out=np.zeros_like(co), where=totals > 0)
        weight = np.asarray(history.sum(axis=0)).ravel()
        group_weight = np.bincount(codes, weights=weight, minlength=n_groups)
        share = np.divide(weight, group_weight[codes], out=np.zeros_like(weight), where=group_weight[codes] > 0)
        return transition, share

    def params(self) -> dict[str, Any]:
        """The parameters of __init__, as they are."""
        return {name: getattr(self, name) for name in _PARAMS}

    def _fitted_arrays(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Everything fit() learns but the people's history, as arrays, and the popularity lists' names."""
        catalogue = self.catalogue_
        arrays = {
            "product_ids": np.asarray(catalogue.ids, dtype=str), "category_code": catalogue.category_code,
            "categories": np.asarray(catalogue.categories, dtype=str), "brand_code": catalogue.brand_code,
            "brands": np.asarray(catalogue.brands, dtype=str),
            "similarity_data": self.similarity_.data, "similarity_indices": self.similarity_.indices,
            "similarity_indptr": self.similarity_.indptr,
            "category_affinity": self.category_affinity_, "category_share": self.category_share_,
            "brand_affinity": self.brand_affinity_, "brand_share": self.brand_share_, "popularity": self.popularity_,
        }
        lists = []
        for i, (segment, (items, scores, source)) in enumerate(self.segment_lists_.items()):
            arrays[f"list_{i}_items"], arrays[f"list_{i}_scores"] = items, scores
            lists.append({"segment": segment, "source": source})
        return arrays, lists

    def digest(self) -> str:
        """sha256 of the fitted state and the parameters: equal digests, equal lists for equal history."""
        arrays, lists = self._fitted_arrays()
        return _digest(arrays, {"params": self.params(), "lists": lists})

    def save(self, folder: Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Store the fitted state (not the history) in `folder`: the arrays, then model.json with the
        parameters, the lists' names, the digest and `metadata`, each file replaced atomically.
        Returns model.json's path."""
        arrays, lists = self._fitted_arrays()
        document = {**dict(metadata or {}), "params": self.params(), "lists": lists,
                    "digest": _digest(arrays, {"params": self.params(), "lists": lists})}
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / (MODEL_ARRAYS + ".tmp"), "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)
        (folder / (MODEL_ARRAYS + ".tmp")).replace(folder / MODEL_ARRAYS)
        (folder / (MODEL_FILE + ".tmp")).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        (folder / (MODEL_FILE + ".tmp")).replace(folder / MODEL_FILE)
        return folder / MODEL_FILE

    @classmethod
    def load(cls, folder: Path) -> tuple[ItemSimilarityRecommender, dict[str, Any]]:
        """(model, model.json) of a fit stored by save(), ready for set_history(). Raises ValueError
        when the files do not hold what model.json's digest says (a torn or altered store), OSError
        when they are missing."""
        document = json.loads((folder / MODEL_FILE).read_text())
        if not isinstance(document, dict):
            raise ValueError(f"{folder / MODEL_FILE} is not a stored model")
        model = cls(**document["params"])
        with np.load(folder / MODEL_ARRAYS, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        lists = document["lists"]
        if _digest(arrays, {"params": model.params(), "lists": lists}) != document.get("digest"):
            raise ValueError(f"the model stored in {folder} does not match its digest")
        model.catalogue_ = _Catalogue(pd.Index(arrays["product_ids"].astype(object)), arrays["category_code"],
                                      pd.Index(arrays["categories"].astype(object)), arrays["brand_code"],
                                      pd.Index(arrays["brands"].astype(object)))
        model.n_items_ = len(model.catalogue_.ids)
        model.similarity_ = sp.csr_matrix(
            (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]),
            shape=(model.n_items_, model.n_items_))
        model.category_affinity_, model.category_share_ = arrays["category_affinity"], arrays["category_share"]
        model.brand_affinity_, model.brand_share_ = arrays["brand_affinity"], arrays["brand_share"]
        model.popularity_ = arrays["popularity"]
        model.segment_lists_ = {entry["segment"]: (arrays[f"list_{i}_items"], arrays[f"list_{i}_scores"],
                                                   str(entry["source"])) for i, entry in enumerate(lists)}
        return model, document

    def neighbours(self, product_id: str, n: int = 10) -> pd.DataFrame:
        """The products most often had with one product by the same customers (similar_product_id, score)."""
        index = self.catalogue_.ids.get_loc(product_id)
        row = self.similarity_.getrow(index)
        order = np.lexsort((row.indices, -row.data))[:n]
        return pd.DataFrame({"similar_product_id": self.catalogue_.ids.to_numpy()[row.indices[order]],
                             "score": row.data[order].astype(np.float64)})

    def _groups(self) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
        """(weight, P(group b | group a), share of the product in its group, product -> group) per term."""
        terms = []
        for weight, affinity, share, codes in (
            (self.category_weight, self.category_affinity_, self.category_share_, self.catalogue_.category_code),
            (self.brand_weight, self.brand_affinity_, self.brand_share_, self.catalogue_.brand_code),
        ):
            if weight:
                terms.append((weight, affinity, share, codes))
        return terms

    def _pool(self, depth: int) -> np.ndarray:
        """Candidate products of the category and brand terms: each group's `depth` products with the
        largest share (within a group those terms rank products by share alone)."""
        keep = np.zeros(self.n_items_, dtype=bool)
        for _, _, share, codes in self._groups():
            order = np.lexsort((np.arange(self.n_items_), -share, codes))
            sorted_codes = codes[order]
            starts = np.searchsorted(sorted_codes, sorted_codes, side="left")
            keep[order[(np.arange(self.n_items_) - starts) < depth]] = True
        return np.flatnonzero(keep)

    def _scores(self, rows: np.ndarray, pool: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate (batch row, product, score) triples: every product similar to the customer's
        history, and the pool's `depth` best by the full score; bought products left out."""
        history = self.history_[rows]
        similar = (history @ self.similarity_).tocsr()
        groups = []
        for weight, affinity, share, codes in self._groups():
            onehot = sp.csr_matrix((np.ones(self.n_items_), (np.arange(self.n_items_), codes)),
                                   shape=(self.n_items_, affinity.shape[0]))
            # sparse @ dense: each row summed on its own, in the order of its entries, so a person's
            # scores do not depend on who else is in the batch (a dense product's BLAS kernel may)
            groups.append((weight, np.asarray((history @ onehot).tocsr() @ affinity), share, codes))
        # the pool, dense: batch x pool; each term weight * group score * share, in place (the
        # weight applied to the small batch x groups matrix before it is spread over the pool)
        block = similar[:, pool].toarray().astype(np.float64)
        for weight, group_scores, share, codes in groups:
            term = (weight * group_scores)[:, codes[pool]]
            term *= share[pool][None, :]
            block += term
            del term
        in_pool = np.zeros(self.n_items_, dtype=bool)
        in_pool[pool] = True
        position = np.full(self.n_items_, -1)
        position[pool] = np.arange(len(pool))
        bought = self.purchased_[rows].tocoo()
        pooled = in_pool[bought.col]
        block[bought.row[pooled], position[bought.col[pooled]]] = -np.inf
        take = min(depth, len(pool))
        top = np.argpartition(-block, take - 1, axis=1)[:, :take] if take < len(pool) else \
            np.tile(np.arange(len(pool)), (len(rows), 1))
        block_rows = np.repeat(np.arange(len(rows)), top.shape[1])
        block_items, block_scores = pool[top.ravel()], block[block_rows, top.ravel()]
        # similar products outside the pool, with their category and brand terms added
        coo = similar.tocoo()
        outside = ~in_pool[coo.col]
        extra_rows, extra_items = coo.row[outside], coo.col[outside]
        extra_scores = coo.data[outside].astype(np.float64)
        for weight, group_scores, share, codes in groups:
            extra_scores += weight * group_scores[extra_rows, codes[extra_items]] * share[extra_items]
        bought_keys = bought.row.astype(np.int64) * self.n_items_ + bought.col
        keep = ~np.isin(extra_rows.astype(np.int64) * self.n_items_ + extra_items, bought_keys)
        return (np.concatenate([block_rows, extra_rows[keep]]), np.concatenate([block_items, extra_items[keep]]),
                np.concatenate([block_scores, extra_scores[keep]]))

    def _candidates(self, rows: np.ndarray, n: int, pool: np.ndarray) -> _Picks:
        """Per known customer row: up to n picks by score (> 0, ties by product), bought products
        excluded, at most max_per_category per category first, then the rest by score if the list
        would run short."""
        cap = self.max_per_category or n
        batch_row, item, score = self._scores(rows, pool, n * 4)
        keep = score > 0
        row, item, score = rows[batch_row[keep]], item[keep], score[keep]
        order = _best_first(row, score, item)
        row, item, score = row[order], item[order], score[order]
        category = self.catalogue_.category_code[item].astype(np.int64)
        within = _rank_within(row.astype(np.int64) * len(self.catalogue_.categories) + category,
                              np.ones(len(row), dtype=bool)) < cap
        order = np.lexsort((~within, row))  # stable: each row's capped picks, then the rest, by score
        row, item, score = row[order], item[order], score[order]
        first_n = _cumcount(row, np.ones(len(row), dtype=bool)) < n
        return _Picks(row[first_n].astype(np.int64), item[first_n].astype(np.int64), score[first_n])

    def recommend(self, customer_ids: Sequence[str], n: int = 10) -> pd.DataFrame:
        """Top n per customer: customer_id, rank (1 = best), product_id, score, source
        (similar_items, segment_popular, popular). Unknown customers get their segment's list."""
        return pd.concat(list(self.iter_recommendations(customer_ids, n)) or [_empty()], ignore_index=True)

    def iter_recommendations(self, customer_ids: Sequence[str], n: int = 10) -> Iterator[pd.DataFrame]:
        """recommend() a batch of customers at a time (what the stage writes from)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        customer_ids = list(customer_ids)
        # A product outside every pool is still a candidate through its similarity to the history;
        # the pools only bound the products the category and brand terms alone can bring in.
        pool = self._pool(self.pool_factor * n)
        batch_size = max(1, self.batch_cells // max(1, len(pool)))
        for start in range(0, len(customer_ids), batch_size):
            batch = customer_ids[start:start + batch_size]
            rows = self._customer_rows(batch)
            known = rows[rows >= 0]
            chosen = self._candidates(known, n, pool) if len(known) else _Picks.empty()
            yield self._fill(batch, n, chosen, rows, self.segment_lists_, self.segment_of_)


_PARAMS = ("n_neighbors", "view_weight", "max_per_category", "category_weight", "brand_weight", "alpha",
           "pool_factor", "batch_cells", "depth")


def _digest(arrays: Mapping[str, np.ndarray], document: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype="object"), "rank": pd.Series(dtype=np.int16),
                         "product_id": pd.Series(dtype="object"), "score": pd.Series(dtype=np.float64),
                         "source": pd.Series(dtype="object")})
