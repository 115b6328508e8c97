"""Activation throughput: records/s for the file destination and for EventBridge served by moto
(server mode, localhost) at N customers. Results in bench/results/activation.json."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from activation_lakes import round_robin, write_customers, write_rfm  # noqa: E402
from rfmlake.activation import FileDestination, sync  # noqa: E402
from rfmlake.lake import Lake  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed(lake: Lake, dest, full: bool = False) -> dict:
    started = time.perf_counter()
    report = sync(lake, dest, full=full)
    seconds = time.perf_counter() - started
    return {"destination": dest.name, "sent": report.sent, "failed": report.failed, "seconds": round(seconds, 2),
            "records_per_s": round(report.sent / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "activation.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rfmlake-bench-activation-"))
    try:
        lake = Lake(work / "lake")
        write_customers(lake, args.customers)
        write_rfm(lake, round_robin(args.customers))
        results = [_timed(lake, FileDestination())]
        write_rfm(lake, round_robin(args.customers, offset=1))  # every customer moves: enters + exits
        results.append({**_timed(lake, FileDestination()), "case": "incremental, every customer moved"})
        results[0]["case"] = "initial"

        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        from rfmlake.activation.destinations.eventbridge import EventBridgeDestination

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per call otherwise
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        server.start()
        try:
            session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="eu-west-1")
            dest = EventBridgeDestination(boto3_session=session, endpoint_url=f"http://127.0.0.1:{port}")
            results.append({**_timed(lake, dest), "case": "initial, moto server (PutEvents x10)"})
        finally:
            server.stop()
        payload = {"benchmark": "activation", "customers": args.customers, "at": datetime.now(UTC).isoformat(),
                   "python": platform.python_version(), "machine": platform.machine(), "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
        for r in results:
            print(f"{r['destination']:12s} {r['case']:40s} {r['sent']:>8d} records {r['seconds']:>8.2f} s "
                  f"{r['records_per_s']:>10.1f} records/s")
        print(f"results: {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
