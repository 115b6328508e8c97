"""Simulate a journey's effect: orders after entering, with a known uplift for the treated.

After a run in which a journey admitted customers (gold.journey_assignments), this writes one
landing orders file: every entered customer orders within the journey's goal window with
probability `base_rate`, a treated one (decided by the journey's hash, rfmlake.journeys.assignment,
as the engine decided) with `base_rate + uplift`. The next run ingests the file, and
gold.journey_results should find the lift: the test of the statistics end to end
(tests/functional/journeys), and what `rfmlake demo` shows.

Seeded: the same lake, journey and parameters give the same file. The order amount is the
customer's average order value (gold.customer_rfm) with lognormal noise.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from rfmlake.errors import RfmlakeError
from rfmlake.generate.landing import MANIFEST_NAME
from rfmlake.journeys.assignment import HOLDOUT, bucket, group_of
from rfmlake.journeys.spec import Journey
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch
from rfmlake.lake.tables import parquet_scan

ORDER_COLUMNS = ("order_id", "customer_id", "order_ts", "status", "currency", "order_total")


@dataclass(frozen=True)
class PlantedEffect:
    journey_id: str
    file: str
    base_rate: float
    uplift: float
    treated: int
    held_out: int
    treated_orders: int
    holdout_orders: int
    first_order_date: str | None
    last_order_date: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plant_journey_effect(lake: Lake, landing: str | Path, journey: Journey, *, uplift: float,
                         base_rate: float = 0.05, seed: int = 7, currency: str | None = None) -> PlantedEffect:
    """Write `<landing>/orders/journey-effect-<journey>-<seed>.csv` (see the module docstring). The
    orders are in `currency`, else in the reporting currency of the lake's last build (so that a
    single-currency shop stays single-currency), else EUR."""
    if not 0.0 <= base_rate <= 1.0:
        raise RfmlakeError(f"base rate must be between 0 and 1, got {base_rate}")
    if not 0.0 <= base_rate + uplift <= 1.0:
        raise RfmlakeError(f"base rate + uplift must be between 0 and 1, got {base_rate} + {uplift}")
    assignments = lake.current("gold", "journey_assignments")
    rfm = lake.current("gold", "customer_rfm")
    if assignments is None or rfm is None:
        raise RfmlakeError(f"the lake at {lake} has no journey entries yet: run the pipeline with the journey "
                           f"{journey.id!r} first (settings journeys.dir)")
    con = duckdb.connect(":memory:")
    orders = lake.current("gold", "fct_orders")
    if currency is None and orders is not None:
        found = con.execute(f"SELECT any_value(reporting_currency) FROM {parquet_scan(orders)}").fetchone()
        currency = found[0] if found else None
    currency = currency or "EUR"
    rows = fetch(con,
        f"SELECT a.customer_id, a.entry_date, CAST(r.avg_order_value AS DOUBLE) FROM {parquet_scan(assignments)} a "
        f"LEFT JOIN {parquet_scan(rfm)} r USING (customer_id) WHERE a.journey_id = ? "
        "ORDER BY a.entry_date, a.customer_id", [journey.id]).fetchall()
    con.close()
    if not rows:
        raise RfmlakeError(f"journey {journey.id!r} has admitted nobody in the lake at {lake}")
    stream = int.from_bytes(hashlib.sha256(journey.id.encode()).digest()[:4], "big")
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    n = len(rows)
    draws, days, seconds, noise = rng.random(n), rng.integers(0, journey.goal.within_days, n), \
        rng.integers(0, 86_400, n), rng.lognormal(0.0, 0.3, n)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ORDER_COLUMNS)
    treated = held_out = treated_orders = holdout_orders = 0
    dates: list[str] = []
    for i, (customer_id, entry_date, average) in enumerate(rows):
        group = group_of(bucket(journey.id, customer_id, journey.salt), journey.holdout_percent, journey.variants)
        is_treated = group != HOLDOUT
        treated += is_treated
        held_out += not is_treated
        if draws[i] >= base_rate + (uplift if is_treated else 0.0):
            continue
        treated_orders += is_treated
        holdout_orders += not is_treated
        at = datetime(entry_date.year, entry_date.month, entry_date.day, tzinfo=UTC) + \
            timedelta(days=int(days[i]), seconds=int(seconds[i]))
        dates.append(at.date().isoformat())
        amount = max(1.0, round(float(average or 50.0) * float(noise[i]), 2))
        writer.writerow([f"JX-{journey.id[:60]}-{seed}-{i:07d}", customer_id, at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "completed", currency, f"{amount:.2f}"])
    folder = Path(landing) / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"journey-effect-{journey.id}-{seed}.csv"
    path.write_text(out.getvalue())
    effect = PlantedEffect(journey.id, str(path), base_rate, uplift, treated, held_out, treated_orders,
                           holdout_orders, min(dates, default=None), max(dates, default=None))
    _record_in_manifest(Path(landing), path, treated_orders + holdout_orders, effect)
    return effect


def _record_in_manifest(landing: Path, path: Path, rows: int, effect: PlantedEffect) -> None:
    """A generated landing folder lists the files its generator wrote; this one too, so a later
    `rfmlake generate --overwrite` (and `rfmlake demo`) removes it instead of refusing a foreign file."""
    manifest_path = landing / MANIFEST_NAME
    if not manifest_path.is_file():
        return
    manifest = json.loads(manifest_path.read_text())
    relative = path.relative_to(landing).as_posix()
    manifest.setdefault("files", {})[relative] = rows
    manifest.setdefault("journey_effects", {})[relative] = effect.to_dict() | {"file": relative}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
