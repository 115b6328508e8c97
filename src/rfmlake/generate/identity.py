"""Planted identity ground truth: people the lake must join or keep apart (docs/identity.md).

Three situations, each recorded in `_identity_truth.json` beside the landing folders so the quality
report can measure merge precision and recall (`rfmlake report --truth`):

- **CRM duplicates**: one person under two customer ids. The second record comes from a second CRM
  export (`customers/customers-0002-crm-import.csv`), signed up later, with typos in the name, an
  email that is the same, mistyped, on another domain or missing, the phone in another format or
  missing, the same address (rarely a mistyped postal code). When the person is a repeat buyer, the
  orders placed after the second sign-up are placed under the second id, so their R/F/M is split
  until the two are joined.
- **Anonymous visits before sign-up**: a new device browses (and sometimes abandons a cart) for a
  few weeks, then signs in once after the customer record was created.
- **Shared devices**: two different customers sign in on one device; they must stay two people.
- **Cart abandoners**: anonymous visitors who put something in the cart in the last weeks and left.

Everything is drawn from generators seeded by (seed, stream), so files stay byte-identical for the
same parameters; the planted rows are additive (their own files and ids), apart from the customer
id of the duplicates' later orders and their purchase events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRUTH_NAME = "_identity_truth.json"
TRUTH_VERSION = 1
DUPLICATE_SHARE = 0.025   # of CRM customers who get a second record
PRE_SIGNUP_SHARE = 0.03   # of CRM customers whose anonymous browsing precedes sign-up
SHARED_DEVICE_SHARE = 0.005
DEVICE_BASE = 5_000_000_000  # planted devices: visitor numbers far above the browsing visitors'
SECOND_CRM_FILE = "customers-0002-crm-import.csv"
IDENTITY_EVENTS_FILE = "events-identity-sessions.jsonl"


@dataclass
class IdentityPlan:
    """Who gets planted where (CRM numbers are the N of customer id C000000N)."""

    originals: np.ndarray            # CRM numbers with a duplicate record
    duplicates: np.ndarray           # the duplicate's CRM number (after every regular customer)
    duplicate_created: np.ndarray    # epoch seconds of the duplicate's sign-up
    pre_signup: np.ndarray           # CRM numbers with anonymous visits before sign-up
    shared_pairs: np.ndarray         # (n, 2) CRM numbers of customers sharing one device
    original_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duplicate_of(self) -> dict[int, int]:
        return dict(zip(self.originals.tolist(), self.duplicates.tolist(), strict=True))


def plan_identity(rng: np.random.Generator, crm_created: np.ndarray, end_s: int) -> IdentityPlan:
    """Choose the planted people among the n CRM customers (numbers 1..n, by sign-up time)."""
    n = len(crm_created)
    numbers = rng.permutation(np.arange(1, n + 1))
    n_dup = max(3, int(n * DUPLICATE_SHARE)) if n >= 30 else 0
    n_pre = max(3, int(n * PRE_SIGNUP_SHARE)) if n >= 30 else 0
    n_shared = max(2, int(n * SHARED_DEVICE_SHARE)) if n >= 30 else 0
    originals = np.sort(numbers[:n_dup])
    pre_signup = np.sort(numbers[n_dup:n_dup + n_pre])
    shared = numbers[n_dup + n_pre:n_dup + n_pre + 2 * n_shared].reshape(-1, 2)
    created = crm_created[originals - 1]
    # The second record signs up 30 days to a year later, before the end of the data.
    later = created + rng.integers(30, 366, len(originals)) * 86_400
    duplicate_created = np.minimum(later, end_s - 86_400)
    duplicate_created = np.maximum(duplicate_created, created + 3_600)
    return IdentityPlan(
        originals=originals,
        duplicates=np.arange(n + 1, n + 1 + len(originals)),
        duplicate_created=duplicate_created,
        pre_signup=pre_signup,
        shared_pairs=shared,
    )


def order_reassignment(plan: IdentityPlan, order_buyer: np.ndarray, order_ts: np.ndarray,
                       buyer_number: np.ndarray, buyer_is_guest: np.ndarray, crm_total: int) -> np.ndarray:
    """Per order, the CRM number it is placed under instead of its buyer's (0 = unchanged): a
    duplicated person's orders after their second sign-up go to the second id."""
    duplicate = np.zeros(crm_total + 1, dtype=np.int64)
    since = np.zeros(crm_total + 1, dtype=np.int64)
    duplicate[plan.originals] = plan.duplicates
    since[plan.originals] = plan.duplicate_created
    crm = np.where(buyer_is_guest, 0, buyer_number)[order_buyer]
    moved = (duplicate[crm] > 0) & (order_ts >= since[crm])
    return np.where(moved, duplicate[crm], 0)


def device_ids(numbers: np.ndarray) -> np.ndarray:
    """Anonymous ids of planted devices (the generator's visitor id scheme, far from its visitors)."""
    from rfmlake.generate.formats import ids

    return ids("V", ((numbers.astype(np.int64) + DEVICE_BASE) * 2_654_435_761) % 10**10, 10)


def _typo(rng: np.random.Generator, text: str) -> str:
    """One keyboard slip: two neighbours swapped, a letter dropped or a letter doubled."""
    if len(text) < 4:
        return text + text[-1]
    i = int(rng.integers(1, len(text) - 2))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


def duplicate_records(rng: np.random.Generator, plan: IdentityPlan, iso: Any) -> pd.DataFrame:
    """The second CRM export: one record per duplicated person, with typos, same columns as the first.
    `iso(epoch_s) -> str` formats the sign-up time."""
    rows = []
    by_number = {int(r["_number"]): r for r in plan.original_rows}
    for original, duplicate, created in zip(plan.originals, plan.duplicates, plan.duplicate_created, strict=True):
        source = by_number[int(original)]
        row = {k: v for k, v in source.items() if not k.startswith("_")}
        row["customer_id"] = f"C{int(duplicate):08d}"
        first, last = str(source["first_name"]), str(source["last_name"])
        u = rng.random(6)
        row["first_name"] = _typo(rng, first) if u[0] < 0.35 else (first.upper() if u[0] < 0.45 else first)
        row["last_name"] = _typo(rng, last) if u[1] < 0.35 else last
        email = str(source["email"] or "")
        if email:
            local, _, domain = email.partition("@")
            if u[2] < 0.35:
                pass  # the same address: the deterministic rule joins them
            elif u[2] < 0.65:
                row["email"] = f"{_typo(rng, local)}@{domain}"
            elif u[2] < 0.85:
                row["email"] = f"{local}@{'mail.example.com' if domain != 'mail.example.com' else 'example.net'}"
            else:
                row["email"] = ""
        phone = str(source["phone"] or "")
        if phone:
            if u[3] < 0.45:
                row["phone"] = phone.replace(" ", "")  # the same number, another format
            elif u[3] < 0.65:
                row["phone"] = ""
        if u[4] < 0.1:
            row["postal_code"] = _typo(rng, str(source["postal_code"]))
        row["created_at"] = iso(int(created))
        row["updated_at"] = iso(int(created))
        rows.append(row)
    return pd.DataFrame(rows)


def identity_events(rng: np.random.Generator, plan: IdentityPlan, crm_created: np.ndarray, start_s: int,
                    end_s: int, product_ids: np.ndarray, shop: str, user_agents: tuple[str, ...]
                    ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sessions of the planted people and the truth about their devices."""
    from rfmlake.generate.formats import iso_utc_z

    events: list[dict[str, Any]] = []
    session_no = [0]

    def session(device: str, customer: str | None, at_s: int, with_cart: bool) -> None:
        session_no[0] += 1
        sid = f"SI{session_no[0]:09d}"
        product = str(product_ids[int(rng.integers(0, len(product_ids)))])
        agent = user_agents[int(rng.integers(0, len(user_agents)))]
        steps = [("page_view", 0, None, f"{shop}/"), ("product_view", 60, product, f"{shop}/p/{product}")]
        if with_cart:
            steps.append(("add_to_cart", 150, product, f"{shop}/cart"))
        for kind, offset, prod, url in steps:
            ms = (at_s + offset) * 1000
            events.append({"event_id": f"EI{len(events) + 1:010d}", "event_ts": str(iso_utc_z(np.array([ms]))[0]),
                           "event_type": kind, "customer_id": customer, "anonymous_id": device, "session_id": sid,
                           "product_id": prod, "url": url, "referrer": None, "user_agent": agent, "ip": None})

    def clamp(at: int) -> int:
        # Inside the data's window; sessions pushed to an edge stay hours apart (two sessions).
        jitter = int(rng.integers(0, 200)) * 3_600
        return int(min(max(at, start_s + 3_600 + jitter), end_s - 3_600 - jitter))

    pre_devices: list[list[str]] = []
    device_no = 0
    for number in plan.pre_signup:
        device_no += 1
        device = str(device_ids(np.array([device_no]))[0])
        customer = f"C{int(number):08d}"
        created = int(crm_created[int(number) - 1])
        for _ in range(int(rng.integers(1, 4))):
            session(device, None, clamp(created - int(rng.integers(1, 60)) * 86_400 - int(rng.integers(0, 86_400))),
                    bool(rng.random() < 0.5))
        session(device, customer, clamp(created + int(rng.integers(60, 30 * 86_400))), False)
        pre_devices.append([device, customer])
    duplicate_devices: list[list[str]] = []
    for duplicate, created in zip(plan.duplicates, plan.duplicate_created, strict=True):
        device_no += 1
        device = str(device_ids(np.array([device_no]))[0])
        customer = f"C{int(duplicate):08d}"
        session(device, customer, clamp(int(created) + int(rng.integers(60, 86_400))), False)
        duplicate_devices.append([device, customer])
    shared: list[dict[str, Any]] = []
    for a, b in plan.shared_pairs:
        device_no += 1
        device = str(device_ids(np.array([device_no]))[0])
        pair = [f"C{int(a):08d}", f"C{int(b):08d}"]
        latest = int(max(crm_created[int(a) - 1], crm_created[int(b) - 1]))
        for customer in pair:
            session(device, customer, clamp(latest + int(rng.integers(3_600, 40 * 86_400))), bool(rng.random() < 0.3))
        session(device, None, clamp(latest + int(rng.integers(3_600, 40 * 86_400))), False)
        shared.append({"anonymous_id": device, "customer_ids": pair})
    # Visitors who put something in the cart in the last weeks and never signed up or bought.
    abandoners: list[str] = []
    for _ in range(max(3, len(crm_created) // 100) if len(crm_created) >= 30 else 0):
        device_no += 1
        device = str(device_ids(np.array([device_no]))[0])
        session(device, None, int(end_s - int(rng.integers(1, 45)) * 86_400 - int(rng.integers(0, 80_000))), True)
        abandoners.append(device)
    frame = pd.DataFrame(events)
    if len(frame):
        frame = frame.sort_values(["event_ts", "event_id"], kind="stable").reset_index(drop=True)
    truth = {"pre_signup_devices": pre_devices, "duplicate_devices": duplicate_devices, "shared_devices": shared,
             "cart_abandoning_devices": abandoners}
    return frame, truth


def write_truth(path: Path, plan: IdentityPlan, device_truth: dict[str, Any]) -> None:
    document = {
        "truth_version": TRUTH_VERSION,
        "notes": {
            "duplicate_customer_pairs": "[original, duplicate]: one person under two customer ids",
            "pre_signup_devices": "[anonymous_id, customer_id]: the device browsed anonymously, then signed in",
            "duplicate_devices": "[anonymous_id, customer_id]: the device of a duplicate record",
            "shared_devices": "two different people signed in on one device: never one person",
            "cart_abandoning_devices": "anonymous visitors who abandoned a cart in the last 45 days",
        },
        "duplicate_customer_pairs": [[f"C{int(o):08d}", f"C{int(d):08d}"]
                                     for o, d in zip(plan.originals, plan.duplicates, strict=True)],
        **device_truth,
    }
    path.write_text(json.dumps(document, sort_keys=True) + "\n")


def unique_contacts(frame: pd.DataFrame, seen: dict[str, np.ndarray]) -> pd.DataFrame:
    """Make emails (their user part) and phones unique across the CRM (two generated people sharing an
    address would be one person to any identity rule): a repeated email gets the customer's number in its local part,
    a repeated phone is left blank. `seen` keeps sorted 64-bit hashes, 16 bytes a customer."""
    frame = frame.copy()

    def keys(column: str, values: np.ndarray) -> np.ndarray:
        # An email's user part alone: john.smith@a and john.smith@b would look like one person too.
        return pd.util.hash_array(_contact_key(column, values))

    for column in ("email", "phone"):
        values = frame[column].to_numpy(dtype=object)
        present = values != ""
        hashes = keys(column, values)
        before = np.isin(hashes, seen.get(column, np.empty(0, dtype=np.uint64)))
        within = pd.Series(hashes).duplicated().to_numpy()
        clash = present & (before | within)
        if clash.any():
            if column == "email":
                local = pd.Series(values[clash]).str.split("@", n=1)
                numbers = frame["customer_id"].to_numpy()[clash]
                values[clash] = [f"{parts[0]}.{str(num)[1:].lstrip('0')}@{parts[1]}"
                                 for parts, num in zip(local, numbers, strict=True)]
            else:
                values[clash] = ""
            frame[column] = values
            hashes = keys(column, values)
        kept = hashes[values != ""]
        seen[column] = np.union1d(seen.get(column, np.empty(0, dtype=np.uint64)), kept)
    return frame


def _contact_key(column: str, values: np.ndarray) -> np.ndarray:
    """What must not repeat between two people: a phone's digits, an email's user part."""
    text = pd.Series(values.astype(str))
    if column == "email":
        return text.str.split("@").str[0].to_numpy(dtype=object)
    return text.str.replace(r"[^0-9+]", "", regex=True).to_numpy(dtype=object)


def keep_apart_from_others(second: pd.DataFrame, plan: IdentityPlan, seen: dict[str, np.ndarray]) -> pd.DataFrame:
    """A mistyped email or phone of a duplicate record that happens to be another customer's is
    blanked: only the duplicated person's own contact details may repeat."""
    second = second.copy()
    originals = pd.DataFrame(plan.original_rows)
    for column in ("email", "phone"):
        values = second[column].to_numpy(dtype=object)
        key = _contact_key(column, values)
        own = _contact_key(column, originals[column].to_numpy(dtype=object))
        clash = (values != "") & np.isin(pd.util.hash_array(key), seen.get(column, np.empty(0, dtype=np.uint64)))
        clash &= key != own
        values[clash] = ""
        second[column] = values
    return second
