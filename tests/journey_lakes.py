"""Small lakes for journey tests, written directly with Lake.write_arrow / write_partitions (no
pipeline run): customers with consent and addresses (activation_lakes), a membership history with
one partition per as_of date, gold.customer_rfm at the latest date, orders and customer value.

Also a destination that records what it was sent, and the child process the crash test kills."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from activation_lakes import write_customers, write_rfm
from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.destinations.outbox import OutboxDestination
from rfmlake.activation.model import Change, RecordFailure
from rfmlake.journeys.spec import EmailTemplate, JourneySet, parse_journey
from rfmlake.lake import Lake

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TEMPLATES = {"offer": EmailTemplate(subject="Hello {{segment}}", text="Come back, {{customer_id}}", name="offer")}


def customer_ids(n: int) -> list[str]:
    return [f"C{i:06d}" for i in range(n)]


class JourneyLake:
    """A lake whose history grows one as_of date at a time."""

    def __init__(self, lake: Lake, n: int, **customer_options: Any) -> None:
        self.lake = lake
        self.n = n
        self.orders: list[dict[str, Any]] = []
        write_customers(lake, n, **customer_options)

    def score(self, day: date, segments: dict[str, str]) -> None:
        """One run's segmentation: a history partition for `day` and gold.customer_rfm."""
        ids = sorted(segments)
        rows = pa.table({"customer_id": ids, "rfm_segment": [segments[c] for c in ids],
                         "cluster_label": ["high value"] * len(ids),
                         "as_of_date": pa.array([day] * len(ids), pa.date32())})
        self.lake.write_partitions("gold", "segment_membership_history", ("as_of_date",), rows)
        write_rfm(self.lake, segments, as_of=day)
        self._write_orders()

    def order(self, customer_id: str, day: date, amount: float = 50.0, status: str = "completed") -> None:
        self.orders.append({"order_id": f"O{len(self.orders):07d}", "customer_id": customer_id, "order_date": day,
                            "status": status, "amount_reporting": amount})
        self._write_orders()

    def land_orders(self, files: Sequence[str | Path]) -> int:
        """Replace the orders with those of landing order files as the generator writes them
        (rfmlake.generate.journey_effect: `Z` timestamps, in the reporting currency): what ingest and
        dbt would make of them, for a lake written directly, which has no silver to run them on."""
        self.orders = []
        for file in files:
            with open(file, newline="") as handle:
                for row in csv.DictReader(handle):
                    at = datetime.fromisoformat(row["order_ts"].replace("Z", "+00:00")).astimezone(UTC)
                    self.orders.append({"order_id": row["order_id"], "customer_id": row["customer_id"],
                                        "order_date": at.date(), "status": row["status"],
                                        "amount_reporting": float(row["order_total"])})
        self._write_orders()
        return len(self.orders)

    def _write_orders(self) -> None:
        schema = pa.schema([("order_id", pa.string()), ("customer_id", pa.string()), ("order_date", pa.date32()),
                            ("status", pa.string()), ("amount_reporting", pa.decimal128(18, 2))])
        rows = [{**o, "amount_reporting": _money(o["amount_reporting"])} for o in self.orders]
        self.lake.write_arrow("gold", "fct_orders", pa.Table.from_pylist(rows, schema=schema))

    def value(self, p_alive: dict[str, float], clv: dict[str, float]) -> None:
        ids = sorted(p_alive)
        as_of = self.lake.read_arrow(self.lake.require("gold", "customer_rfm")).column("as_of_date")[0].as_py()
        self.lake.write_arrow("gold", "customer_value", pa.table({
            "customer_id": ids, "as_of_date": pa.array([as_of] * len(ids), pa.date32()),
            "repeat_orders": [1] * len(ids), "p_alive": [p_alive[c] for c in ids],
            "expected_orders_365d": [1.0] * len(ids), "expected_order_value": [50.0] * len(ids),
            "predicted_clv_365d": [clv[c] for c in ids], "discounted_margin_clv_365d": [clv[c] for c in ids],
            "model_version": ["v"] * len(ids)}))


def _money(value: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(value, 2)))


def journey_set(*journeys: dict[str, Any], templates: dict[str, EmailTemplate] | None = None) -> JourneySet:
    return JourneySet(journeys=tuple(parse_journey(j, f"test:{j['id']}") for j in journeys),
                      templates=templates if templates is not None else TEMPLATES, folder="tests")


def win_back(**overrides: Any) -> dict[str, Any]:
    """A journey on entering At Risk: an email, a week's wait, a text to those who did not order."""
    journey: dict[str, Any] = {
        "id": "win_back", "name": "Win back",
        "trigger": {"type": "segment_entered", "segment": "At Risk", "include_existing": True},
        "holdout_percent": 20, "variants": [{"id": "A", "percent": 50}, {"id": "B", "percent": 50}],
        "goal": {"within_days": 14},
        "steps": [{"id": "offer", "email": {"template": "offer"}}, {"id": "wait", "wait": {"days": 7}},
                  {"id": "ordered", "branch": {"if": "ordered", "then": "exit"}},
                  {"id": "nudge", "sms": {"text": "Still missing you, {{segment}}"}}],
    }
    journey.update(overrides)
    return journey


class Recorder(Destination):
    """Records every message it is sent in a JSON Lines file (appending: a repeat shows up twice),
    optionally after a pause per message, so a test can kill the process part-way."""

    sends_messages = True

    def __init__(self, path: Path, *, name: str = "recorder", replay_safe: bool = True, batch_size: int = 3,
                 pause: float = 0.0, refuse: Sequence[str] = ()) -> None:
        self.name = name
        self.channel = "any"
        self.batch_size = batch_size
        self.replay_safe = replay_safe
        self.path = path
        self.pause = pause
        self.refuse = set(refuse)

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures = []
        for change in batch:
            assert change.message is not None
            if change.customer_id in self.refuse:
                failures.append(RecordFailure(change.customer_id, "refused by the test"))
                continue
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"message_id": change.message.message_id, "customer_id": change.customer_id,
                                         "channel": change.message.channel, "step": change.message.step_id,
                                         "email": change.email, "phone": change.phone}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            if self.pause:
                time.sleep(self.pause)
        return failures


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


class SlowOutbox(OutboxDestination):
    """The outbox, taking its time per batch, so the crash test can kill the process mid-tick."""

    def __init__(self, location: str, pause: float) -> None:
        super().__init__(location, batch_size=3)
        self.pause = pause

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures = super().send(batch)
        time.sleep(self.pause)
        return failures


QUIET_NIGHTS = {"email": {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"}}}
BEFORE_QUIET = datetime(2026, 6, 1, 18, 50, tzinfo=UTC)  # 20:50 in Berlin (summer time)


def one_email_journey(quiet: bool = False) -> JourneySet:
    """A journey that emails every At Risk customer once, with no holdout; `quiet`: not from 21:00
    to 08:00 in Berlin."""
    return journey_set(win_back(holdout_percent=0, steps=[{"id": "offer", "email": {"template": "offer"}}],
                                **({"channels": QUIET_NIGHTS} if quiet else {})))


def child(lake_dir: str, mode: str, record: str, pause: str, quiet: str = "") -> None:
    """The process the crash test kills: advances a one-email journey through a slow destination,
    the outbox (`mode` outbox) or a Recorder that may not repeat a send (`mode` unsafe). With
    `quiet` "quiet", the journey has quiet hours from 21:00 and the tick is planned at 20:50."""
    from rfmlake.journeys.channels import outbox_location
    from rfmlake.journeys.engine import advance

    if mode == "outbox":
        destination: Destination = SlowOutbox(outbox_location(lake_dir), float(pause))
    else:
        destination = Recorder(Path(record), replay_safe=False, pause=float(pause))
    advance(Lake(lake_dir), one_email_journey(quiet == "quiet"),
            {c: destination for c in ("email", "sms", "call", "event")}, now=BEFORE_QUIET if quiet == "quiet" else NOON)


if __name__ == "__main__":
    child(*sys.argv[1:])
