"""How well the identity graph joins people, measured against planted ground truth (the generator's
`_identity_truth.json`, rfmlake.generate.identity), for the quality report (`rfmlake report --truth`).

- CRM merges, pairwise: every two customer records the graph puts in one person is a predicted pair;
  precision = predicted pairs that are planted duplicates / predicted pairs, recall = planted
  duplicates found / planted duplicates. Pairs among ids the truth does not know (guests, ids of
  other sources) are left out of both.
- Devices: a planted pre-sign-up device must join its customer's person (recall); a shared device
  must join neither person, and its two customers must stay two people.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch

TRUTH_FILE = "_identity_truth.json"  # rfmlake.generate.identity.TRUTH_NAME


class TruthError(RfmlakeError):
    """The ground-truth file is missing or not one the generator wrote."""


@dataclass(frozen=True)
class MergeQuality:
    customer_records: int
    planted_pairs: int
    predicted_pairs: int
    true_positives: int
    precision: float
    recall: float
    pre_signup_devices: int
    pre_signup_devices_joined: int
    device_recall: float
    shared_devices: int
    shared_devices_kept_apart: int
    wrong_merges: list[list[str]]
    missed_pairs: list[list[str]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_truth(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TruthError(f"no identity truth file at {path} (the generator writes _identity_truth.json "
                         "beside the landing folders)")
    try:
        truth = json.loads(path.read_text())
    except ValueError as exc:
        raise TruthError(f"{path} is not JSON: {exc}") from None
    if not isinstance(truth, dict) or "duplicate_customer_pairs" not in truth:
        raise TruthError(f"{path} is not an identity truth file (no duplicate_customer_pairs)")
    return truth


def measure_merges(lake: Lake, truth: dict[str, Any], examples: int = 10) -> MergeQuality:
    """Merge precision and recall of the lake's current gold.identity_graph against `truth`."""
    from rfmlake.lake.catalog import connect

    if lake.current("gold", "identity_graph") is None:
        raise TruthError(f"the lake at {lake.location} has no gold.identity_graph yet; run the pipeline first")
    con = connect(lake, zones=("silver", "gold"))
    try:
        con.execute("CREATE TEMP TABLE planted (a VARCHAR, b VARCHAR)")
        pairs = [sorted(p) for p in truth.get("duplicate_customer_pairs", [])]
        if pairs:
            con.executemany("INSERT INTO planted VALUES (?, ?)", pairs)
        known = "(SELECT customer_id FROM silver.customers)"
        con.execute(f"""
            CREATE TEMP TABLE predicted AS
            SELECT DISTINCT a.member_id AS a, b.member_id AS b
            FROM gold.identity_graph a JOIN gold.identity_graph b
              ON a.person_id = b.person_id AND a.member_id < b.member_id
            WHERE a.member_kind = 'customer_id' AND b.member_kind = 'customer_id'
              AND a.member_id IN {known} AND b.member_id IN {known}""")
        records = con.execute("SELECT count(*) FROM silver.customers").fetchone()[0]
        predicted = con.execute("SELECT count(*) FROM predicted").fetchone()[0]
        tp = con.execute("SELECT count(*) FROM predicted JOIN planted USING (a, b)").fetchone()[0]
        wrong = fetch(con, f"""SELECT a, b FROM predicted EXCEPT SELECT a, b FROM planted ORDER BY a, b
                                LIMIT {int(examples)}""").fetchall()
        missed = fetch(con, f"""SELECT a, b FROM planted EXCEPT SELECT a, b FROM predicted ORDER BY a, b
                                 LIMIT {int(examples)}""").fetchall()
        # The planted devices and shared devices as tables, each checked by joins (one query per
        # device took minutes at 10M order lines: 60k planted devices).
        members = "(SELECT member_id, person_id FROM gold.identity_graph WHERE member_kind = '{}')"
        customers, anonymous = members.format("customer_id"), members.format("anonymous_id")
        devices = truth.get("pre_signup_devices", [])
        con.execute("CREATE TEMP TABLE devices (device VARCHAR, customer VARCHAR)")
        if devices:
            con.executemany("INSERT INTO devices VALUES (?, ?)", [list(d) for d in devices])
        joined = con.execute(f"""
            SELECT count(*) FROM devices
            JOIN {anonymous} AS d ON d.member_id = devices.device
            JOIN {customers} AS c ON c.member_id = devices.customer
            WHERE d.person_id = c.person_id""").fetchone()[0]
        shared = truth.get("shared_devices", [])
        con.execute("CREATE TEMP TABLE shared (device VARCHAR, a VARCHAR, b VARCHAR)")
        if shared:
            con.executemany("INSERT INTO shared VALUES (?, ?, ?)",
                            [[item["anonymous_id"], *item["customer_ids"]] for item in shared])
        apart = con.execute(f"""
            SELECT count(*) FROM shared
            JOIN {customers} AS a ON a.member_id = shared.a
            JOIN {customers} AS b ON b.member_id = shared.b
            JOIN {anonymous} AS d ON d.member_id = shared.device
            WHERE a.person_id <> b.person_id AND d.person_id NOT IN (a.person_id, b.person_id)""").fetchone()[0]
    finally:
        con.close()
    return MergeQuality(
        customer_records=int(records), planted_pairs=len(pairs), predicted_pairs=int(predicted),
        true_positives=int(tp), precision=round(tp / predicted, 4) if predicted else 1.0,
        recall=round(tp / len(pairs), 4) if pairs else 1.0, pre_signup_devices=len(devices),
        pre_signup_devices_joined=int(joined), device_recall=round(joined / len(devices), 4) if devices else 1.0,
        shared_devices=len(shared), shared_devices_kept_apart=int(apart),
        wrong_merges=[list(r) for r in wrong], missed_pairs=[list(r) for r in missed],
    )
