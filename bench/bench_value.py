"""Benchmark the customer value models (BG/NBD + Gamma-Gamma) on N simulated customers.

Writes bench/results/<date>-<host>-value-<N>.json and .md: simulation, fit and prediction wall
times, peak RSS of the process, distinct (x, t_x, T) triples, and the fitted vs true parameters.
Days are whole days, as in the lake (gold.customer_rfm_features has dates).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rfmlake.value.bgnbd import BetaGeoModel
from rfmlake.value.gamma_gamma import GammaGammaModel
from rfmlake.value.simulate import simulate_bgnbd_orders, summarize_orders

ROOT = Path(__file__).resolve().parent
TRUE = {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0, "p": 6.0, "q": 4.0, "v": 15.0}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--horizon", type=int, default=365)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    n = args.customers
    steps: list[dict[str, Any]] = []

    def step(name: str, started: float) -> None:
        steps.append({"step": name, "seconds": round(time.perf_counter() - started, 2), "peak_rss_mb": peak_rss_mb()})
        print(f"{name}: {steps[-1]['seconds']} s, peak RSS {steps[-1]['peak_rss_mb']} MB", flush=True)

    t0 = time.perf_counter()
    lengths = np.random.default_rng(1).integers(1, 731, n).astype(float)
    orders = simulate_bgnbd_orders(n, TRUE["r"], TRUE["alpha"], TRUE["a"], TRUE["b"], lengths, seed=7,
                                   p=TRUE["p"], q=TRUE["q"], v=TRUE["v"])
    orders["day"] = np.floor(orders["day"])
    summary = summarize_orders(orders)
    del orders
    x, t_x, T = (summary[c].to_numpy() for c in ("x", "t_x", "T"))
    m = summary["repeat_mean"].fillna(0.0).to_numpy()
    step("simulate", t0)
    triples = len(np.unique(np.column_stack([x, t_x, T]), axis=0))

    t0 = time.perf_counter()
    bg = BetaGeoModel().fit(x, t_x, T)
    step("fit BG/NBD", t0)
    t0 = time.perf_counter()
    gg = GammaGammaModel().fit(x, m)
    step("fit Gamma-Gamma", t0)
    t0 = time.perf_counter()
    clv = bg.expected_orders(float(args.horizon), x, t_x, T) * gg.expected_spend(x, m)
    alive = bg.p_alive(x, t_x, T)
    step(f"predict p_alive, orders and CLV ({args.horizon} d)", t0)
    assert np.all(np.isfinite(clv)) and np.all(np.isfinite(alive))

    fitted = {**{k: v for k, v in bg.to_dict().items() if k != "fit"},
              **{k: v for k, v in gg.to_dict().items() if k != "fit"}}
    results = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version()},
        "customers": n, "repeat_customers": int((x > 0).sum()), "distinct_triples": triples,
        "steps": steps, "peak_rss_mb": peak_rss_mb(),
        "parameters": {k: {"true": TRUE[k], "fitted": round(fitted[k], 4)} for k in TRUE},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"{results['started_at'][:10]}-{results['machine']['host']}-value-{n}"
    (args.results / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"# rfmlake value models: {n:,} customers", "",
             f"- repeat customers: {results['repeat_customers']:,}; distinct (x, t_x, T): {triples:,}",
             f"- peak RSS: {results['peak_rss_mb']} MB", "", "| step | seconds | peak RSS MB |", "| --- | ---: | ---: |"]
    lines += [f"| {s['step']} | {s['seconds']} | {s['peak_rss_mb']} |" for s in steps]
    lines += ["", "| parameter | true | fitted |", "| --- | ---: | ---: |"]
    lines += [f"| {k} | {v['true']} | {v['fitted']} |" for k, v in results["parameters"].items()]
    (args.results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"results: {args.results / stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
