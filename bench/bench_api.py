"""Profile API latency and throughput: N synthetic profiles (each with 10 recommendations) in the
embedded store, `rfmlake serve` in a subprocess on a loopback port, and a load generator (wrk when
installed, else a bounded Python keep-alive client) on GET /profiles/{id} (`--route profile`) or
GET /customers/{id}/recommendations (`--route recommendations`) with random ids. Reports requests/s
and p50/p95/p99; results in bench/results/api.json, api-recommendations.json (and .md). Loopback
only, bounded duration."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from rfmlake.lake import Lake
from rfmlake.profiles.auth import create_key
from rfmlake.profiles.indexer import embedded_store, new_generation_id
from rfmlake.profiles.local import keys_file

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS = ["Champions", "Loyal", "Potential Loyalist", "New", "Promising", "At Risk", "Hibernating", "Lost"]
CITIES = ["Lyon", "Paris", "Berlin", "Munich", "Lisbon", "Porto", "Madrid", "Rome", "Oslo", "Vienna"]

# The path of each route with a %s for the customer id (wrk's Lua and the Python client share it).
ROUTES = {"profile": "/profiles/%s", "recommendations": "/customers/%s/recommendations"}
CATEGORIES = ["Home", "Kitchen", "Apparel", "Outdoor", "Electronics", "Beauty", "Toys"]

WRK_SCRIPT = r"""
math.randomseed(7)
local n = tonumber(os.getenv("BENCH_PROFILES"))
local key = os.getenv("BENCH_KEY")
local path = os.getenv("BENCH_PATH")
request = function()
  return wrk.format("GET", string.format(path, string.format("C%07d", math.random(0, n - 1))), {["X-API-Key"] = key})
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "duration_us": %d, "errors_status": %d, "errors_socket": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n', summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def documents(n: int):
    rng = random.Random(7)
    for i in range(n):
        r, f, m = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5)
        yield {
            "customer_id": f"C{i:07d}", "email_token": f"{rng.getrandbits(256):064x}", "is_guest": False,
            "country_code": "FR", "city": rng.choice(CITIES), "postal_code": "69001",
            "created_at": "2024-01-01T00:00:00", "marketing_opt_in": rng.random() < 0.6, "has_email": True,
            "has_phone": rng.random() < 0.5, "first_order_date": "2023-02-01", "last_order_date": "2024-03-01",
            "lifetime_orders": f * 2, "orders_placed": f * 2 + 1, "as_of_date": "2024-04-01",
            "recency_days": rng.randint(1, 700), "frequency": f * 2, "monetary": round(rng.uniform(5, 5000), 2),
            "avg_order_value": round(rng.uniform(5, 300), 2), "r_score": r, "f_score": f, "m_score": m,
            "rfm_cell": f"{r}{f}{m}", "rfm_segment": rng.choice(SEGMENTS), "cluster_id": rng.randint(0, 3),
            "cluster_label": rng.choice(["high value", "occasional", "new", "lapsed"]), "model_version": "bench",
            "value": None, "last_event_at": "2024-03-30T10:00:00", "last_event_type": "page_view", "event_count": 3,
            "recommendations": [
                {"rank": rank, "product_id": f"P{rng.randrange(20_000):06d}", "product_name": "Cozy Throw Blanket",
                 "category": rng.choice(CATEGORIES), "brand": "Fjord", "score": round(1.0 / rank, 6),
                 "source": "similar_items"} for rank in range(1, 11)],
        }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rfmlake serve exited with {proc.returncode}")
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            con.request("GET", "/health")
            if con.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("rfmlake serve did not become healthy")


def run_wrk(port: int, key: str, n: int, duration: int, connections: int, threads: int, path: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    env = dict(os.environ, BENCH_PROFILES=str(n), BENCH_KEY=key, BENCH_PATH=path)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", script.name,
         f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, timeout=duration + 60, check=True)
    os.unlink(script.name)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = stats["duration_us"] / 1e6
    return {"generator": "wrk", "requests": stats["requests"], "seconds": round(seconds, 2),
            "requests_per_s": round(stats["requests"] / seconds, 1), "errors": stats["errors_status"] + stats["errors_socket"],
            "p50_ms": stats["p50_us"] / 1000, "p95_ms": stats["p95_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
            "max_ms": stats["max_us"] / 1000}


def run_python(port: int, key: str, n: int, duration: int, connections: int, path: str) -> dict:
    """Closed-loop keep-alive clients in threads (the GIL makes this a weaker generator than wrk)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def client(seed: int) -> None:
        rng = random.Random(seed)
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        local: list[float] = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            con.request("GET", path % f"C{rng.randrange(n):07d}", headers={"X-API-Key": key})
            response = con.getresponse()
            response.read()
            local.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(local)

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 3)

    return {"generator": "python", "requests": len(latencies), "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 1), "errors": errors[0],
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": round(latencies[-1] * 1000, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (bounded)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--route", choices=sorted(ROUTES), default="profile", help="which GET to load")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "work" / "api")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default: bench/results/api.json, api-recommendations.json)")
    args = parser.parse_args()
    path = ROUTES[args.route]
    route = "GET " + path % "{id}"
    if args.out is None:
        args.out = ROOT / "bench" / "results" / ("api.json" if args.route == "profile" else f"api-{args.route}.json")
    if not 1 <= args.duration <= 300:
        raise SystemExit("--duration must be 1..300 seconds")

    os.environ.setdefault("RFMLAKE_PII_KEY", "bench-key-not-a-secret")
    shutil.rmtree(args.work_dir, ignore_errors=True)
    lake = Lake(args.work_dir / "lake")
    store = embedded_store(lake)
    started = time.perf_counter()
    generation = new_generation_id()
    store.load_generation(documents(args.profiles), generation)
    store.activate(generation)
    load_seconds = time.perf_counter() - started
    key = create_key(keys_file(lake), "bench")

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rfmlake.cli.main", "serve", "--lake", str(lake.root), "--port", str(port),
         "--rate", "1000000", "--burst", "1000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)
        cpu_before = cpu_seconds(proc.pid)
        if shutil.which("wrk"):
            result = run_wrk(port, key, args.profiles, args.duration, args.connections, args.threads, path)
        else:
            result = run_python(port, key, args.profiles, args.duration, args.connections, path)
        # The server's own CPU per request: what latency would be without waiting for a core, so a
        # run on a busy shared machine still says what the API costs.
        if cpu_before is not None and result["requests"]:
            result["server_cpu_ms_per_request"] = round(
                (cpu_seconds(proc.pid) - cpu_before) * 1000 / result["requests"], 3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    report = {
        "benchmark": route, "profiles": args.profiles, "connections": args.connections,
        "store_load_seconds": round(load_seconds, 2), **result, "target_p99_ms": 10,
        "meets_target": result["p99_ms"] < 10 and result["errors"] == 0,
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        # the machine is shared: a load average above the CPU count means the numbers are the
        # neighbours' as much as the API's
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    md = args.out.with_suffix(".md")
    md.write_text(
        f"# Profile API: {route} at {args.profiles:,} profiles\n\n"
        f"| generator | connections | requests/s | p50 ms | p95 ms | p99 ms | max ms | errors |\n"
        f"| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['generator']} | {args.connections} | {result['requests_per_s']:,} | {result['p50_ms']} | "
        f"{result['p95_ms']} | {result['p99_ms']} | {result['max_ms']} | {result['errors']} |\n\n"
        f"Store load: {load_seconds:.1f} s. Server CPU per request: {result.get('server_cpu_ms_per_request')} ms. "
        f"Target p99 < 10 ms: {'met' if report['meets_target'] else 'NOT met'}. "
        f"{report['cpus']} CPUs (load average {report['load_average'][0]} at the end), Python {report['python']}, "
        f"{report['at']}.\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
