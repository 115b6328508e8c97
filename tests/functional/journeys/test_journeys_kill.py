"""Exactly once under kill -9: a process advancing the journeys is killed at several points of a
tick; the next run finishes the tick. The outbox ends with every message once; a destination that
cannot take a repeat (an email, a text) never gets one, and the one message a kill may leave in
doubt is recorded as such. A tick planned before quiet hours and resumed inside them sends nothing
until they end, then every message once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journey_lakes import NOON, JourneyLake, Recorder, customer_ids, one_email_journey, recorded
from rfmlake.activation.destinations.outbox import OutboxDestination, read_outbox
from rfmlake.journeys.channels import outbox_location
from rfmlake.journeys.engine import advance
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake

HELPER = Path(__file__).resolve().parents[2] / "journey_lakes.py"
CUSTOMERS = 150  # all At Risk and consenting; C000002 has no email
JOURNEY = one_email_journey()


def _lake(root: Path) -> Lake:
    lake = Lake(root / "lake")
    JourneyLake(lake, CUSTOMERS, no_email={2}).score(NOON.date(), dict.fromkeys(customer_ids(CUSTOMERS), "At Risk"))
    return lake


def _kill_after(lake: Lake, mode: str, record: Path, done: callable, pause: float,  # type: ignore[valid-type]
                quiet: str = "") -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen([sys.executable, str(HELPER), str(lake.root), mode, str(record), str(pause), quiet],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not done() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, f"the child ended before the kill: {process.communicate()[1].decode()[-2000:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert JourneyStore(lake.location).meta() is not None, "killed outside a tick: the test proves nothing"


@pytest.mark.parametrize("sent_before_kill", [1, 40, 140])
def test_the_outbox_holds_every_message_once_after_kill_9(tmp_path: Path, sent_before_kill: int) -> None:
    lake = _lake(tmp_path)
    where = outbox_location(lake.location)
    _kill_after(lake, "outbox", tmp_path / "unused", lambda: len(read_outbox(where)) >= sent_before_kill, 0.05)
    report = advance(lake, JOURNEY, dict.fromkeys(("email", "sms", "call", "event"), OutboxDestination(where)),
                     now=NOON)
    assert report.resumed and report.in_doubt == 0
    messages = Counter(m["customer_id"] for m in read_outbox(where))
    assert set(messages) == set(customer_ids(CUSTOMERS)) - {"C000002"} and max(messages.values()) == 1
    ledger = JourneyStore(lake.location).sends().to_pylist()
    assert Counter(s["status"] for s in ledger) == {"sent": CUSTOMERS - 1, "skipped": 1}
    assert advance(lake, JOURNEY, dict.fromkeys(("email", "sms", "call", "event"), OutboxDestination(where)),
                   now=NOON).status == "up_to_date"


@pytest.mark.parametrize("sent_before_kill", [1, 60])
def test_a_send_that_cannot_be_repeated_is_never_repeated_after_kill_9(tmp_path: Path, sent_before_kill: int) -> None:
    lake = _lake(tmp_path)
    record = tmp_path / "sent.jsonl"
    _kill_after(lake, "unsafe", record, lambda: len(recorded(record)) >= sent_before_kill, 0.03)
    report = advance(lake, JOURNEY, dict.fromkeys(("email", "sms", "call", "event"),
                                                  Recorder(record, replay_safe=False)), now=NOON)
    assert report.resumed
    sent = Counter(m["customer_id"] for m in recorded(record))
    assert max(sent.values()) == 1  # never twice
    ledger = {s["customer_id"]: s["status"] for s in JourneyStore(lake.location).sends().to_pylist()}
    doubt = [c for c, status in ledger.items() if status == "in_doubt"]
    assert len(doubt) <= 1 and report.in_doubt == len(doubt)
    # every other consenting customer with an email got exactly one; the one in doubt at most one
    assert set(sent) | set(doubt) == set(customer_ids(CUSTOMERS)) - {"C000002"}
    assert {c for c, status in ledger.items() if status == "sent"} == set(sent) - set(doubt)


def test_a_tick_killed_before_quiet_hours_sends_nothing_inside_them_and_everything_once_after(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    where = outbox_location(lake.location)
    journey = one_email_journey(quiet=True)
    outbox = dict.fromkeys(("email", "sms", "call", "event"), OutboxDestination(where))
    _kill_after(lake, "outbox", tmp_path / "unused", lambda: len(read_outbox(where)) >= 30, 0.05, quiet="quiet")
    before = Counter(m["customer_id"] for m in read_outbox(where))
    assert 30 <= len(before) < CUSTOMERS - 1

    for at in (datetime(2026, 6, 1, 20, 0, tzinfo=UTC), datetime(2026, 6, 2, 5, 59, tzinfo=UTC)):  # 22:00, 07:59
        report = advance(lake, journey, outbox, now=at)
        # the batch the kill interrupted began at 20:50: replayed (the outbox absorbs it), the rest held
        assert report.deferred == {"email": CUSTOMERS - 1 - len(before)}
        assert Counter(m["customer_id"] for m in read_outbox(where)) == before  # nothing inside quiet hours
    morning = advance(lake, journey, outbox, now=datetime(2026, 6, 2, 6, 0, tzinfo=UTC))  # 08:00 in Berlin
    assert morning.deferred == {} and morning.sent == CUSTOMERS - 1 - len(before)
    messages = Counter(m["customer_id"] for m in read_outbox(where))
    assert set(messages) == set(customer_ids(CUSTOMERS)) - {"C000002"} and max(messages.values()) == 1
    assert advance(lake, journey, outbox, now=datetime(2026, 6, 2, 7, 0, tzinfo=UTC)).status == "up_to_date"
