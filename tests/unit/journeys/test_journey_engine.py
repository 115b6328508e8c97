"""The journey engine on small lakes: entries from segment changes, deterministic groups that hold
across reruns and restarts, waits and branches, exactly one message per customer and step, caps
and quiet hours, consent and the suppression list checked when sending."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from activation_lakes import write_rfm
from journey_lakes import NOON, TEMPLATES, JourneyLake, Recorder, customer_ids, journey_set, recorded, win_back
from rfmlake.journeys.assignment import HOLDOUT, bucket, group_of
from rfmlake.journeys.engine import advance
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.results import compute_results, write_assignments
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake

DAY0 = date(2026, 6, 1)


def senders(recorder: Recorder) -> dict[str, Recorder]:
    return {channel: recorder for channel in ("email", "sms", "call", "event")}


def entries(lake: Lake) -> dict[str, dict]:
    return {e["customer_id"]: e for e in JourneyStore(lake.location).entries().to_pylist()}


def ledger(lake: Lake) -> list[dict]:
    return JourneyStore(lake.location).sends().to_pylist()


@pytest.fixture()
def shop(lake: Lake) -> JourneyLake:
    shop = JourneyLake(lake, 200, no_consent={1}, no_email={2})
    shop.score(DAY0, {c: ("At Risk" if i < 100 else "Loyal") for i, c in enumerate(customer_ids(200))})
    return shop


def test_customers_entering_a_segment_are_drawn_into_groups_that_hold_across_reruns(
        shop: JourneyLake, tmp_path: Path) -> None:
    journeys = journey_set(win_back())
    recorder = Recorder(tmp_path / "sent.jsonl")
    report = advance(shop.lake, journeys, senders(recorder), now=NOON)

    admitted = entries(shop.lake)
    # consent is required to enter (C000001 has none), holdout included; C000002 has no email
    assert sorted(admitted) == [c for c in customer_ids(100) if c != "C000001"]
    for customer, entry in admitted.items():
        assert entry["variant"] == group_of(bucket("win_back", customer, ""), 20, journeys.journeys[0].variants)
        assert entry["entry_date"] == DAY0 and entry["trigger"] == "in At Risk"
    groups = Counter(e["variant"] for e in admitted.values())
    assert report.groups["win_back"] == groups and 8 <= groups[HOLDOUT] <= 32
    treated = {c for c, e in admitted.items() if e["variant"] != HOLDOUT}
    sent = recorded(recorder.path)
    assert {m["customer_id"] for m in sent} == treated - {"C000002"}
    assert all(m["step"] == "offer" and m["email"] for m in sent)
    assert report.skipped == {"no_email": 1} if "C000002" in treated else not report.skipped

    # the same as_of again: nothing new, nothing sent twice
    again = advance(shop.lake, journeys, senders(recorder), now=NOON + timedelta(hours=1))
    assert again.status == "up_to_date" and len(recorded(recorder.path)) == len(sent)

    # a fresh state (another machine, a rebuilt lake): the same groups
    shutil.rmtree(shop.lake.system_dir / "journeys")
    advance(shop.lake, journeys, senders(Recorder(tmp_path / "other.jsonl")), now=NOON)
    assert {c: e["variant"] for c, e in entries(shop.lake).items()} == {c: e["variant"] for c, e in admitted.items()}


def test_waits_branches_and_goal_move_each_customer_once(shop: JourneyLake, tmp_path: Path) -> None:
    journeys = journey_set(win_back(holdout_percent=0))
    recorder = Recorder(tmp_path / "sent.jsonl")
    advance(shop.lake, journeys, senders(recorder), now=NOON)
    shop.order("C000010", DAY0 + timedelta(days=2))       # converts: leaves the journey
    shop.order("C000011", DAY0 + timedelta(days=20))      # after this run's as_of: not known yet
    shop.order("C000012", DAY0 + timedelta(days=1), status="cancelled")  # not a completed order

    # 3 days later: still waiting; 20 customers newly At Risk enter; the converter leaves
    day3 = DAY0 + timedelta(days=3)
    shop.score(day3, {c: ("At Risk" if i < 120 else "Loyal") for i, c in enumerate(customer_ids(200))})
    report = advance(shop.lake, journeys, senders(recorder), now=NOON)
    assert report.entered["win_back"] == 20 and report.exited == {"converted": 1}
    state = entries(shop.lake)
    assert state["C000010"]["status"] == "converted" and state["C000010"]["exit_date"] == day3
    assert state["C000005"]["next_step"] == "wait" and state["C000005"]["wait_until"] == DAY0 + timedelta(days=7)
    assert state["C000105"]["entry_date"] == day3 and state["C000105"]["next_step"] == "wait"

    # 7 days after the first entries: the wait is over, nobody else ordered: everyone left gets a text
    day7 = DAY0 + timedelta(days=7)
    shop.score(day7, {c: ("At Risk" if i < 120 else "Loyal") for i, c in enumerate(customer_ids(200))})
    advance(shop.lake, journeys, senders(recorder), now=NOON)
    texts = [m for m in recorded(recorder.path) if m["channel"] == "sms"]
    first_cohort = {c for c, e in entries(shop.lake).items() if e["entry_date"] == DAY0} - {"C000010"}
    assert {m["customer_id"] for m in texts} == first_cohort
    assert all(m["phone"] and m["phone"].startswith("+4670") for m in texts)
    assert {e["status"] for c, e in entries(shop.lake).items() if c in first_cohort} == {"completed"}
    # exactly one message per customer and step over all the runs
    steps = Counter((m["customer_id"], m["step"]) for m in recorded(recorder.path))
    assert max(steps.values()) == 1
    assert len(ledger(shop.lake)) == sum(steps.values()) + 1  # + C000002's email: no address, skipped


def test_branch_on_leaving_the_segment(lake: Lake, tmp_path: Path) -> None:
    shop = JourneyLake(lake, 10)
    shop.score(DAY0, dict.fromkeys(customer_ids(10), "At Risk"))
    journey = win_back(holdout_percent=0, steps=[
        {"id": "wait", "wait": {"days": 2}},
        {"id": "still_there", "branch": {"if": "left_segment", "then": "exit", "else": "next"}},
        {"id": "nudge", "sms": {"text": "hi"}}])
    recorder = Recorder(tmp_path / "sent.jsonl")
    advance(lake, journey_set(journey), senders(recorder), now=NOON)
    shop.score(DAY0 + timedelta(days=2), {c: ("Loyal" if i < 4 else "At Risk") for i, c in enumerate(customer_ids(10))})
    advance(lake, journey_set(journey), senders(recorder), now=NOON)
    assert sorted(m["customer_id"] for m in recorded(recorder.path)) == customer_ids(10)[4:]
    assert {entries(lake)[c]["exit_reason"] for c in customer_ids(4)} == {"branch still_there: left_segment"}


def test_exit_migration_and_value_triggers_and_audience_filters(lake: Lake, tmp_path: Path) -> None:
    shop = JourneyLake(lake, 12)
    before = dict(zip(customer_ids(12), ["Champions"] * 4 + ["Loyal"] * 4 + ["At Risk"] * 4, strict=True))
    shop.score(DAY0, before)
    after = dict(before, C000000="At Risk", C000001="Hibernating", C000004="At Risk", C000008="Loyal")
    day1 = DAY0 + timedelta(days=1)
    shop.score(day1, after)
    shop.value(p_alive={c: (0.1 if i % 2 else 0.9) for i, c in enumerate(customer_ids(12))},
               clv={c: float(100 * i) for i, c in enumerate(customer_ids(12))})
    one_email = [{"id": "offer", "email": {"template": "offer"}}]
    journeys = journey_set(
        win_back(id="left_champions", trigger={"type": "segment_exited", "segment": "Champions"},
                 holdout_percent=0, steps=one_email),
        win_back(id="slipping", trigger={"type": "segment_migrated", "from": ["Champions", "Loyal"], "to": ["At Risk"]},
                 holdout_percent=0, steps=one_email),
        win_back(id="valuable_at_risk", holdout_percent=0, steps=one_email,
                 trigger={"type": "value_condition", "where": [{"column": "predicted_clv", "op": ">=", "value": 500},
                                                              {"column": "p_alive", "op": "<", "value": 0.3}]},
                 audience={"where": [{"column": "rfm_segment", "op": "!=", "value": "Champions"}]}),
        win_back(id="new_at_risk", trigger={"type": "segment_entered", "segment": "At Risk"},
                 holdout_percent=0, steps=one_email,
                 audience={"where": [{"column": "monetary", "op": ">", "value": 13.5}]}),
    )
    # the first run of a journey sees only its as_of: edges need the date before it
    advance(lake, journeys, senders(Recorder(tmp_path / "sent.jsonl")), now=NOON)
    by_journey: dict[str, dict[str, str]] = {}
    for entry in JourneyStore(lake.location).entries().to_pylist():
        by_journey.setdefault(entry["journey_id"], {})[entry["customer_id"]] = entry["trigger"]
    assert by_journey["left_champions"] == {"C000000": "exited Champions", "C000001": "exited Champions"}
    assert by_journey["slipping"] == {"C000000": "migrated Champions -> At Risk", "C000004": "migrated Loyal -> At Risk"}
    # CLV >= 500 and p_alive < 0.3: C000005, C000007, C000009, C000011 (odd, >= 5); not Champions: all
    assert sorted(by_journey["valuable_at_risk"]) == ["C000005", "C000007", "C000009", "C000011"]
    # entered At Risk: C000000 and C000004; monetary is 10 + i: only C000004 is above 13.5
    assert by_journey["new_at_risk"] == {"C000004": "entered At Risk"}


def test_frequency_caps_count_every_journey_and_quiet_hours_hold_sends(shop: JourneyLake, tmp_path: Path) -> None:
    cap = {"email": {"max_messages": 1, "per_days": 7},
           "sms": {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"}}}
    first = win_back(id="a_first", holdout_percent=0, channels=cap,
                     steps=[{"id": "offer", "email": {"template": "offer"}}, {"id": "text", "sms": {"text": "hi"}}])
    second = win_back(id="b_second", holdout_percent=0, channels=cap,
                      steps=[{"id": "offer", "email": {"template": "offer"}}])
    recorder = Recorder(tmp_path / "sent.jsonl")
    night = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 22:30 in Berlin (summer time)
    report = advance(shop.lake, journey_set(first, second), senders(recorder), now=night)
    emails = Counter(m["customer_id"] for m in recorded(recorder.path) if m["channel"] == "email")
    assert max(emails.values()) == 1  # the second journey's email would be a second in 7 days
    capped = [s for s in ledger(shop.lake) if s["status"] == "capped"]
    # every entrant's second email is capped (C000002's too: a planned message counts, though it then
    # finds no address)
    assert {s["journey_id"] for s in capped} == {"b_second"} and report.capped == len(capped) == len(emails) + 1
    assert all(s["reason"] == "1 per 7 days" for s in capped)
    assert report.deferred == {"sms": 99} and not [m for m in recorded(recorder.path) if m["channel"] == "sms"]

    # the morning after (same as_of: `rfmlake journeys run` again), the texts go out, once
    morning = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)  # 09:00 in Berlin
    later = advance(shop.lake, journey_set(first, second), senders(recorder), now=morning)
    assert later.deferred == {} and later.sent == 99  # C000002 has no email but a phone
    texts = Counter(m["customer_id"] for m in recorded(recorder.path) if m["channel"] == "sms")
    assert len(texts) == 99 and max(texts.values()) == 1
    assert advance(shop.lake, journey_set(first, second), senders(recorder), now=morning).status == "up_to_date"


QUIET_EMAIL = {"email": {"max_messages": 1, "per_days": 7,
                         "quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"}}}
BEFORE_QUIET = datetime(2026, 6, 1, 18, 50, tzinfo=UTC)  # 20:50 in Berlin (summer time)


def test_a_tick_planned_before_quiet_hours_and_resumed_inside_them_holds_its_sends_until_they_end(
        shop: JourneyLake, tmp_path: Path) -> None:
    journeys = journey_set(win_back(holdout_percent=0, channels=QUIET_EMAIL,
                                    steps=[{"id": "offer", "email": {"template": "offer"}}]))
    email = tmp_path / "email.jsonl"

    class DiesAfterTwoBatches(Recorder):
        calls = 0

        def send(self, batch):  # noqa: ANN001, ANN201 - the Destination signature
            DiesAfterTwoBatches.calls += 1
            if DiesAfterTwoBatches.calls == 3:
                raise SystemExit("killed before the third batch")
            return super().send(batch)

    with pytest.raises(SystemExit):
        advance(shop.lake, journeys, senders(DiesAfterTwoBatches(email)), now=BEFORE_QUIET)
    before = Counter(m["customer_id"] for m in recorded(email))
    # two batches of three went out at 20:50 (C000002, in the first, has no email: skipped)
    assert len(before) == 5 and "C000002" not in before

    # resumed at 22:00 in Berlin: the batch whose send had begun is replayed as it was (a replay-safe
    # destination absorbs it; it began outside quiet hours), the other planned messages are kept, not sent
    night = advance(shop.lake, journeys, senders(Recorder(email)), now=datetime(2026, 6, 1, 20, 0, tzinfo=UTC))
    held = 99 - 9  # 99 consenting At Risk customers (C000001 has no consent), nine in the first batches
    # (the report of a resumed tick counts the whole tick: the five sent before the crash, three replayed)
    assert night.resumed and night.sent == 8 and night.deferred == {"email": held}
    assert len(recorded(email)) == 8 and before.keys() <= {m["customer_id"] for m in recorded(email)}
    statuses = Counter(s["status"] for s in ledger(shop.lake))
    assert statuses == {"sent": 8, "deferred": held, "skipped": 1}
    assert {s["reason"] for s in ledger(shop.lake) if s["status"] == "deferred"} == {
        "quiet hours 21:00-08:00 Europe/Berlin"}
    # later that night: still nothing
    later = advance(shop.lake, journeys, senders(Recorder(email)), now=datetime(2026, 6, 1, 23, 30, tzinfo=UTC))
    assert later.status == "up_to_date" and later.deferred == {"email": held} and len(recorded(email)) == 8

    # 08:30 in Berlin: the held messages go out, each once, and the cap (1 per 7 days) still holds
    morning = advance(shop.lake, journeys, senders(Recorder(email)), now=datetime(2026, 6, 2, 6, 30, tzinfo=UTC))
    assert morning.sent == held and morning.deferred == {} and morning.capped == 0
    sent = Counter(m["customer_id"] for m in recorded(email))
    assert set(sent) == set(customer_ids(100)) - {"C000001", "C000002"} and max(sent.values()) == 1
    final = Counter(s["status"] for s in ledger(shop.lake))
    assert final == {"sent": 8 + held, "deferred": held, "skipped": 1}
    assert advance(shop.lake, journeys, senders(Recorder(email)),
                   now=datetime(2026, 6, 2, 7, 0, tzinfo=UTC)).status == "up_to_date"
    assert len(recorded(email)) == 8 + held


def test_a_long_send_that_runs_into_quiet_hours_defers_the_rest(shop: JourneyLake, tmp_path: Path) -> None:
    first = win_back(holdout_percent=0, channels=QUIET_EMAIL, steps=[{"id": "offer", "email": {"template": "offer"}}])
    journeys = journey_set(first)
    email = tmp_path / "email.jsonl"
    ticks = iter(range(10_000))
    start = datetime(2026, 6, 1, 18, 59, 50, tzinfo=UTC)  # 20:59:50 in Berlin

    def slow_clock() -> datetime:  # each reading one second after the last: a batch a second
        return start + timedelta(seconds=next(ticks))

    report = advance(shop.lake, journeys, senders(Recorder(email)), clock=slow_clock)
    # planned at 20:59:50 (reading 0); the batches of three read 1..9 go out before 21:00:00 (C000002,
    # in the first, has no email), the other 72 of the 99 messages are held
    assert report.sent == 26 and report.deferred == {"email": 72} and len(recorded(email)) == 26
    # the morning after, a second journey emails the same customers: the cap (1 per 7 days, every
    # journey) counts the held messages, which go first, so nobody gets a second email (the second
    # journey comes first in the folder, by id: the held messages still go before its new ones)
    second = win_back(id="second", holdout_percent=0, channels=QUIET_EMAIL,
                      steps=[{"id": "offer", "email": {"template": "offer"}}])
    morning = advance(shop.lake, journey_set(second, first), senders(Recorder(email)),
                      now=datetime(2026, 6, 2, 6, 30, tzinfo=UTC))
    # every second email is capped but C000002's (no address, its first was never sent)
    assert morning.sent == 72 and morning.capped == 98 and morning.skipped == {"no_email": 1}
    sent = Counter(m["customer_id"] for m in recorded(email))
    assert len(sent) == 98 and max(sent.values()) == 1
    assert {m["message_id"] for m in recorded(email)} <= {s["message_id"] for s in ledger(shop.lake)
                                                          if s["journey_id"] == "win_back"}


def test_consent_withdrawn_and_erased_customers_are_not_sent_when_the_step_comes(
        shop: JourneyLake, tmp_path: Path) -> None:
    from rfmlake.governance.tokens import customer_id_token, lake_key
    from rfmlake.ingest.suppression import SUPPRESSION_LIST

    journey = win_back(holdout_percent=0, steps=[{"id": "wait", "wait": {"days": 1}},
                                                 {"id": "offer", "email": {"template": "offer"}}])
    recorder = Recorder(tmp_path / "sent.jsonl")
    advance(shop.lake, journey_set(journey), senders(recorder), now=NOON)
    assert recorded(recorder.path) == []
    # before the email goes out: C000003 withdraws consent, C000004's consent becomes unknown, C000005 is erased
    customers = shop.lake.read_arrow(shop.lake.require("silver", "customers")).to_pylist()
    for row in customers:
        if row["customer_id"] == "C000003":
            row["marketing_opt_in"] = False
        if row["customer_id"] == "C000004":
            row["marketing_opt_in"] = None
    shop.lake.write_arrow("silver", "customers", pa.Table.from_pylist(
        customers, schema=shop.lake.read_arrow(shop.lake.require("silver", "customers")).schema))
    token = customer_id_token("C000005", lake_key(shop.lake))
    shop.lake.write_system(json.dumps({"customer_id_tokens": [token], "email_tokens": []}).encode(), *SUPPRESSION_LIST)

    shop.score(DAY0 + timedelta(days=1), {c: ("At Risk" if i < 100 else "Loyal") for i, c in enumerate(customer_ids(200))})
    report = advance(shop.lake, journey_set(journey), senders(recorder), now=NOON)
    sent = {m["customer_id"] for m in recorded(recorder.path)}
    assert not sent & {"C000003", "C000004", "C000005", "C000002"}
    assert report.skipped == {"no_marketing_consent": 1, "consent_unknown": 1, "suppressed": 1, "no_email": 1}
    reasons = {s["customer_id"]: s["reason"] for s in ledger(shop.lake) if s["status"] == "skipped"}
    assert reasons == {"C000002": "no_email", "C000003": "no_marketing_consent", "C000004": "consent_unknown",
                       "C000005": "suppressed"}


def test_a_batch_whose_outcome_a_crash_left_unknown_is_never_repeated_by_an_unsafe_destination(
        shop: JourneyLake, tmp_path: Path) -> None:
    journeys = journey_set(win_back(holdout_percent=0, steps=[{"id": "offer", "email": {"template": "offer"}}]))

    class DiesAfterFiveSends(Recorder):
        calls = 0

        def send(self, batch):  # noqa: ANN001, ANN201 - the Destination signature
            failures = super().send(batch)
            DiesAfterFiveSends.calls += 1
            if DiesAfterFiveSends.calls == 5:
                raise SystemExit("killed after the send, before its journal record")
            return failures

    email = tmp_path / "email.jsonl"
    with pytest.raises(SystemExit):
        advance(shop.lake, journeys, senders(DiesAfterFiveSends(email, replay_safe=False)), now=NOON)
    assert len(recorded(email)) == 5
    report = advance(shop.lake, journeys, senders(Recorder(email, replay_safe=False)), now=NOON)
    assert report.resumed and report.in_doubt == 1
    counts = Counter(m["customer_id"] for m in recorded(email))
    assert max(counts.values()) == 1 and len(counts) == 98  # 99 consenting At Risk, one without an email
    doubt = [s for s in ledger(shop.lake) if s["status"] == "in_doubt"]
    assert len(doubt) == 1 and doubt[0]["customer_id"] in counts  # it did go out, and was not repeated


def test_a_replay_safe_destination_gets_the_interrupted_batch_again_and_the_outbox_holds_it_once(
        shop: JourneyLake, tmp_path: Path) -> None:
    from rfmlake.activation.destinations.outbox import OutboxDestination, read_outbox
    from rfmlake.journeys.channels import outbox_location

    journeys = journey_set(win_back(holdout_percent=0, steps=[{"id": "offer", "email": {"template": "offer"}}]))
    where = outbox_location(shop.lake.location)

    class DiesMidway(OutboxDestination):
        calls = 0

        def send(self, batch):  # noqa: ANN001, ANN201
            failures = super().send(batch)
            DiesMidway.calls += 1
            if DiesMidway.calls == 3:
                raise SystemExit("killed after the write, before its journal record")
            return failures

    with pytest.raises(SystemExit):
        advance(shop.lake, journeys, {c: DiesMidway(where, batch_size=10) for c in ("email", "sms", "call", "event")},
                now=NOON)
    assert len(read_outbox(where)) == 29  # three batches of 10; C000002 in the first has no email
    report = advance(shop.lake, journeys, {c: OutboxDestination(where, batch_size=10)
                                           for c in ("email", "sms", "call", "event")}, now=NOON)
    assert report.resumed and report.in_doubt == 0
    messages = read_outbox(where)
    assert len(messages) == len({m["message_id"] for m in messages}) == 98
    assert all(m["email"] and m["subject"] == "Hello At Risk" for m in messages)


def test_tables_follow_the_store(shop: JourneyLake, tmp_path: Path) -> None:
    journeys = journey_set(win_back())
    advance(shop.lake, journeys, senders(Recorder(tmp_path / "sent.jsonl")), now=NOON)
    store = JourneyStore(shop.lake.location)
    ref = write_assignments(shop.lake, store)
    assert [p.key for p in ref.partitions] == ["journey_id=win_back/entry_date=2026-06-01"]
    assert write_assignments(shop.lake, store).commit_id == ref.commit_id  # nothing new: no commit
    rows = shop.lake.read_arrow(ref).to_pylist()
    assert {r["customer_id"]: r["variant"] for r in rows} == {c: e["variant"] for c, e in entries(shop.lake).items()}
    results = compute_results(shop.lake, store, journeys).to_pylist()
    assert [(r["variant"], r["entered"]) for r in results] == [
        (g, n) for g, n in sorted(Counter(e["variant"] for e in entries(shop.lake).values()).items(),
                                  key=lambda kv: ["holdout", "A", "B"].index(kv[0]))]
    assert sum(r["sent"] for r in results) == len(recorded(tmp_path / "sent.jsonl"))


def test_paused_and_ended_journeys_and_an_earlier_as_of(lake: Lake, tmp_path: Path) -> None:
    shop = JourneyLake(lake, 30)
    shop.score(DAY0, {c: ("At Risk" if i < 10 else "Loyal") for i, c in enumerate(customer_ids(30))})
    steps = [{"id": "wait", "wait": {"days": 2}}, {"id": "offer", "email": {"template": "offer"}}]
    ending = win_back(id="ending", holdout_percent=0, end_date=DAY0.isoformat(), steps=steps)
    paused = win_back(id="paused", holdout_percent=0, steps=steps)
    recorder = Recorder(tmp_path / "sent.jsonl")
    advance(lake, journey_set(ending, paused), senders(recorder), now=NOON)
    day2 = DAY0 + timedelta(days=2)
    shop.score(day2, {c: ("At Risk" if i < 20 else "Loyal") for i, c in enumerate(customer_ids(30))})
    paused["status"] = "paused"
    advance(lake, journey_set(ending, paused), senders(recorder), now=NOON)
    by_journey = Counter((e["journey_id"], e["status"]) for e in JourneyStore(lake.location).entries().to_pylist())
    # ended on DAY0: the ten customers who entered At Risk on day2 do not enter, the first ten go on
    # and get their email; the paused journey admits nobody and moves nobody
    assert by_journey == {("ending", "completed"): 10, ("paused", "active"): 10}
    assert {m["customer_id"] for m in recorded(recorder.path)} == set(customer_ids(10))
    results = compute_results(lake, JourneyStore(lake.location), journey_set(ending, paused)).to_pylist()
    assert {(r["journey_id"], r["day"]) for r in results if r["variant"] == "A"} == {
        ("ending", DAY0), ("ending", day2), ("paused", DAY0), ("paused", day2)}
    # a run for an earlier as_of (a backfill) neither admits again nor moves anyone back
    write_rfm(lake, dict.fromkeys(customer_ids(30), "At Risk"), as_of=DAY0)
    report = advance(lake, journey_set(ending, win_back(**{**paused, "status": "active"})), senders(recorder), now=NOON)
    assert report.entered == {} and len(recorded(recorder.path)) == 10


def test_a_destination_that_cannot_send_messages_is_refused(shop: JourneyLake) -> None:
    from rfmlake.activation.destinations.file import FileDestination

    with pytest.raises(JourneyError, match="does not send journey messages"):
        advance(shop.lake, journey_set(win_back()), dict.fromkeys(("email", "sms", "call", "event"),
                                                                   FileDestination()), now=NOON)
    with pytest.raises(JourneyError, match=r"no destination for channel\(s\) \['sms'\]"):
        advance(shop.lake, journey_set(win_back()), {"email": Recorder(Path("x"))}, now=NOON)
    assert not (shop.lake.system_dir / "journeys" / "state.json").exists()
    assert datetime.now(UTC) > NOON  # the tests' clock is fixed, not the machine's


def _withdraw_consent(lake: Lake, customer_id: str) -> None:
    customers = lake.read_arrow(lake.require("silver", "customers"))
    rows = [{**r, "marketing_opt_in": False if r["customer_id"] == customer_id else r["marketing_opt_in"]}
            for r in customers.to_pylist()]
    lake.write_arrow("silver", "customers", pa.Table.from_pylist(rows, schema=customers.schema))


def _suppress(lake: Lake, customer_id: str) -> None:
    from rfmlake.governance.tokens import customer_id_token, lake_key
    from rfmlake.ingest.suppression import SUPPRESSION_LIST

    token = customer_id_token(customer_id, lake_key(lake))
    lake.write_system(json.dumps({"customer_id_tokens": [token], "email_tokens": []}).encode(), *SUPPRESSION_LIST)


def test_a_message_held_for_quiet_hours_is_not_sent_to_a_customer_who_left_meanwhile(
        shop: JourneyLake, tmp_path: Path) -> None:
    quiet = {"email": {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"}}}
    # an email, a day's wait, out if no longer At Risk, a text; and a journey of one email (its entries
    # complete when the email is planned, so no later step of theirs would notice a conversion)
    longer = win_back(id="a_longer", holdout_percent=0, channels=quiet, steps=[
        {"id": "offer", "email": {"template": "offer"}}, {"id": "wait", "wait": {"days": 1}},
        {"id": "still_there", "branch": {"if": "left_segment", "then": "exit"}}, {"id": "nudge", "sms": {"text": "hi"}}])
    single = win_back(id="b_single", holdout_percent=0, channels=quiet, steps=[{"id": "offer", "email": {"template": "offer"}}])
    journeys = journey_set(longer, single)
    email = tmp_path / "email.jsonl"
    ticks = iter(range(10_000))
    start = datetime(2026, 6, 1, 18, 59, 50, tzinfo=UTC)  # 20:59:50 in Berlin: nine batches go, then 21:00

    def slow_clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    night = advance(shop.lake, journeys, senders(Recorder(email)), clock=slow_clock)
    converts, leaves, opts_out, erased = "C000099", "C000098", "C000097", "C000096"
    held = {(s["journey_id"], s["customer_id"]) for s in ledger(shop.lake) if s["status"] == "deferred"}
    assert night.deferred == {"email": 72 + 99}
    assert {(j, c) for j in ("a_longer", "b_single") for c in (converts, leaves, opts_out, erased)} <= held

    # before the window ends: one customer orders, one leaves At Risk, one withdraws consent, one is erased
    shop.order(converts, DAY0)
    _withdraw_consent(shop.lake, opts_out)
    _suppress(shop.lake, erased)
    day1 = DAY0 + timedelta(days=1)
    shop.score(day1, {c: ("At Risk" if i < 100 and c != leaves else "Loyal") for i, c in enumerate(customer_ids(200))})
    morning = advance(shop.lake, journeys, senders(Recorder(email)), now=datetime(2026, 6, 2, 6, 30, tzinfo=UTC))

    emails = {(m["customer_id"], m["message_id"]) for m in recorded(email) if m["channel"] == "email"}
    got = {c for c, _ in emails}
    assert converts not in got and opts_out not in got and erased not in got
    state = {(e["journey_id"], e["customer_id"]): e for e in JourneyStore(shop.lake.location).entries().to_pylist()}
    assert state[("a_longer", converts)]["status"] == "converted"
    assert state[("a_longer", leaves)]["status"] == "exited"
    assert state[("b_single", converts)]["status"] == "completed"
    # the one-email journey has no step on leaving the segment: its held email goes out
    sent_to_leaver = [s for s in ledger(shop.lake) if s["customer_id"] == leaves and s["status"] == "sent"
                      and s["channel"] == "email"]
    assert [s["journey_id"] for s in sent_to_leaver] == ["b_single"]
    # nothing dropped silently: each held message has a second ledger row, from this run, saying why
    outcome = {(s["journey_id"], s["customer_id"]): (s["status"], s["reason"]) for s in ledger(shop.lake)
               if s["tick_id"] == morning.tick and s["step_id"] == "offer"}
    assert outcome[("a_longer", converts)] == outcome[("b_single", converts)] == (
        "skipped", "converted before the message could be sent")
    assert outcome[("a_longer", leaves)] == (
        "skipped", "left the journey (branch still_there: left_segment) before the message could be sent")
    for journey in ("a_longer", "b_single"):
        assert outcome[(journey, opts_out)] == ("skipped", "no_marketing_consent")
        assert outcome[(journey, erased)] == ("skipped", "suppressed")
    assert set(outcome) == held and morning.deferred == {}
    assert morning.sent == len(emails) - 26 + len([m for m in recorded(email) if m["channel"] == "sms"])


def test_recommended_products_are_read_only_for_the_messages_whose_text_names_them(
        lake: Lake, tmp_path: Path) -> None:
    from rfmlake.activation.destinations.outbox import OutboxDestination, read_outbox
    from rfmlake.journeys.channels import outbox_location
    from rfmlake.journeys.spec import EmailTemplate
    from rfmlake.recommend.job import RECOMMENDATIONS_SCHEMA

    shop = JourneyLake(lake, 3)
    shop.score(DAY0, dict.fromkeys(customer_ids(3), "At Risk"))
    where = outbox_location(lake.location)
    templates = {**TEMPLATES, "picks": EmailTemplate(subject="For you, {{segment}}", name="picks",
                                                      text="Picked for you: {{recommendations}}. Top: {{recommendation_1}}.")}
    plain = win_back(id="plain", holdout_percent=0, steps=[{"id": "offer", "email": {"template": "offer"}},
                                                           {"id": "tip", "sms": {"text": "Hi {{segment}}"}}])
    # a table that cannot be read as recommendations (no rank, no product): a journey whose texts
    # name no product never reads it
    lake.write_arrow("gold", "product_recommendations", pa.table({"customer_id": customer_ids(3), "note": ["x"] * 3}))
    report = advance(lake, journey_set(plain, templates=templates),
                     {c: OutboxDestination(where) for c in ("email", "sms", "call", "event")}, now=NOON)
    assert report.sent == 6 and {m["text"] for m in read_outbox(where)} == {"Come back, C000000", "Come back, C000001",
                                                                           "Come back, C000002", "Hi At Risk"}

    # the recommendations stage's table: the email and the text that name products render them
    # (C000001 has none: empty fields)
    products = [("C000000", 1, "P1", "Rain Jacket"), ("C000000", 2, "P2", None), ("C000000", 3, "P3", "Fleece"),
                ("C000000", 4, "P4", "Tent"), ("C000002", 1, "P9", "Stove")]
    lake.write_arrow("gold", "product_recommendations", pa.Table.from_pylist(
        [{"customer_id": c, "rank": r, "product_id": p, "product_name": n, "category": "outdoor", "brand": "b",
          "score": 1.0 / r, "source": "item_similarity", "as_of_date": DAY0, "model_version": "v"}
         for c, r, p, n in products], schema=RECOMMENDATIONS_SCHEMA))
    picks = win_back(id="picks", holdout_percent=0, steps=[{"id": "picks", "email": {"template": "picks"}},
                                                           {"id": "also", "sms": {"text": "Also: {{recommendation_4}}"}}])
    advance(lake, journey_set(plain, picks, templates=templates),
            {c: OutboxDestination(where) for c in ("email", "sms", "call", "event")}, now=NOON)
    rendered = {(m["customer_id"], m["step_id"]): m["text"] for m in read_outbox(where) if m["journey_id"] == "picks"}
    assert rendered == {
        ("C000000", "picks"): "Picked for you: Rain Jacket, P2, Fleece. Top: Rain Jacket.",
        ("C000000", "also"): "Also: Tent",
        ("C000001", "picks"): "Picked for you: . Top: .", ("C000001", "also"): "Also: ",
        ("C000002", "picks"): "Picked for you: Stove. Top: Stove.", ("C000002", "also"): "Also: "}


def _unsettled(rows: list[dict]) -> list[dict]:
    """The messages deferred and not settled, read from the whole ledger: each one's first deferral."""
    settled = {r["message_id"] for r in rows if r["status"] != "deferred"}
    first: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["tick_id"]):
        if row["status"] == "deferred" and row["message_id"] not in settled:
            first.setdefault(row["message_id"], row)
    return list(first.values())


@pytest.mark.parametrize("from_before_the_index", [False, True])
def test_held_messages_survive_ticks_that_commit_and_the_store_keeps_just_them(
        shop: JourneyLake, tmp_path: Path, from_before_the_index: bool) -> None:
    from rfmlake.journeys.erasure import erase_from_journeys

    quiet = {"email": {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/Berlin"}}}
    offer = win_back(id="a_offer", holdout_percent=0, channels=quiet, steps=[{"id": "offer", "email": {"template": "offer"}}])
    text = win_back(id="b_text", holdout_percent=0, steps=[{"id": "text", "sms": {"text": "hi"}}])  # never quiet
    journeys = journey_set(offer, text)
    sent = tmp_path / "sent.jsonl"
    store = JourneyStore(shop.lake.location)
    folder = shop.lake.system_dir / "journeys"
    ticks = iter(range(10_000))
    start = datetime(2026, 6, 1, 18, 59, 50, tzinfo=UTC)  # 20:59:50 in Berlin: nine batches go, then 21:00
    advance(shop.lake, journeys, senders(Recorder(sent)), clock=lambda: start + timedelta(seconds=next(ticks)))
    held = _unsettled(ledger(shop.lake))
    assert len(held) == 72 and store.deferred().to_pylist() == held
    assert store.state()["deferred"] == f"deferred-{store.state()['tick']}.parquet"
    if from_before_the_index:  # a lake whose state was committed before the store kept the file
        state = json.loads((folder / "state.json").read_text())
        (folder / state.pop("deferred")).unlink()
        (folder / "state.json").write_text(json.dumps(state))
        assert store.deferred().to_pylist() == held

    # 01:00 in Berlin, a new as_of: 20 customers enter; their texts go, their emails wait at the step;
    # the tick commits a ledger of texts and keeps the held emails
    day1 = DAY0 + timedelta(days=1)
    shop.score(day1, {c: ("At Risk" if i < 120 else "Loyal") for i, c in enumerate(customer_ids(200))})
    night = advance(shop.lake, journeys, senders(Recorder(sent)), now=datetime(2026, 6, 1, 23, 0, tzinfo=UTC))
    assert night.tick and night.sent == 20 and night.deferred == {"email": 72 + 20}
    assert store.deferred().to_pylist() == _unsettled(ledger(shop.lake)) == held
    assert sorted(p.name for p in folder.glob("deferred-*")) == [f"deferred-{night.tick}.parquet"]
    erase_from_journeys(shop.lake, "C000099")
    assert [r["customer_id"] for r in store.deferred().to_pylist()] == [
        r["customer_id"] for r in held if r["customer_id"] != "C000099"]

    # 08:30: the held emails go, each once, with the new entrants' emails; nothing is held any more
    morning = advance(shop.lake, journeys, senders(Recorder(sent)), now=datetime(2026, 6, 2, 6, 30, tzinfo=UTC))
    assert morning.sent == 71 + 20 and morning.deferred == {}
    emails = Counter(m["customer_id"] for m in recorded(sent) if m["channel"] == "email")
    assert max(emails.values()) == 1 and len(emails) == 26 + 71 + 20
    assert "C000099" not in emails  # erased while held
    assert store.state()["deferred"] is None and store.deferred().num_rows == 0 and not list(folder.glob("deferred-*"))


@pytest.mark.parametrize("from_before_the_dates", [False, True])
def test_a_tick_reads_only_the_ledger_files_inside_the_cap_window_and_results_read_none(
        lake: Lake, tmp_path: Path, from_before_the_dates: bool) -> None:
    """Eleven daily ticks, one ledger file each; the last one's caps and results must not need the
    files older than the longest cap (3 days): they are made unreadable before it runs."""
    from rfmlake.journeys.erasure import erase_from_journeys

    shop = JourneyLake(lake, 20)
    ids = customer_ids(20)
    cap = {"email": {"max_messages": 1, "per_days": 3}}
    step = [{"id": "offer", "email": {"template": "offer"}}]
    last = DAY0 + timedelta(days=10)
    # C00000i enters `daily` on day i and gets its email then; `later` starts on the last day and
    # emails everyone At Risk, capped for those emailed in the last 3 days (this tick's included)
    daily = win_back(id="a_daily", holdout_percent=0, channels=cap, steps=step)
    later = win_back(id="b_later", holdout_percent=0, channels=cap, steps=step, start_date=last.isoformat())
    journeys = journey_set(daily, later)
    recorder = Recorder(tmp_path / "sent.jsonl")
    store = JourneyStore(lake.location)
    folder = lake.system_dir / "journeys"
    for day in range(10):
        if day == 9 and from_before_the_dates:  # a state committed before the ledger files' dates
            state = json.loads((folder / "state.json").read_text())
            del state["ledger_dates"], state["sent_counts"]
            (folder / "state.json").write_text(json.dumps(state))
        shop.score(DAY0 + timedelta(days=day), {c: ("At Risk" if i <= day else "Loyal") for i, c in enumerate(ids)})
        assert advance(lake, journeys, senders(recorder), now=NOON).sent == 1
    state = store.state()
    ticks = {s["tick_id"]: s["tick_date"].isoformat() for s in store.sends().to_pylist()}
    assert len(state["ledger"]) == 10 and state["ledger_dates"] == ticks  # recorded, or learned once

    old = [folder / "sends" / f"{t}.parquet" for t, d in ticks.items() if date.fromisoformat(d) < last - timedelta(days=3)]
    assert len(old) == 7  # days 0-6; day 7 is read (the window's edge), days 8-9 hold the caps
    kept = {path: path.read_bytes() for path in old}
    for path in old:
        path.write_bytes(b"not a parquet file: reading it fails")
    shop.score(last, {c: ("At Risk" if i <= 10 else "Loyal") for i, c in enumerate(ids)})
    report = advance(lake, journeys, senders(recorder), now=NOON)

    today = store.sends({"ledger": [report.tick]}).to_pylist()
    assert {(s["journey_id"], s["customer_id"]) for s in today if s["status"] == "capped"} == {
        ("b_later", "C000008"), ("b_later", "C000009"), ("b_later", "C000010")}  # emailed on days 8, 9, today
    assert sorted(s["customer_id"] for s in today if s["status"] == "sent" and s["journey_id"] == "b_later") == ids[:8]
    assert report.sent == 1 + 8
    results = compute_results(lake, store, journeys).to_pylist()  # the old files are still unreadable

    for path, data in kept.items():
        path.write_bytes(data)
    assert _sent_by_day(results) == _sent_by_day_in_ledger(store, results)
    assert sum(r["sent"] for r in results if r["day"] == last) == 11 + 8 == len(recorded(recorder.path))

    # erasure takes the customer's sends out of the ledger, and out of the counts the results read
    erase_from_journeys(lake, "C000003")
    results = compute_results(lake, store, journeys).to_pylist()
    assert _sent_by_day(results) == _sent_by_day_in_ledger(store, results)
    assert sum(r["sent"] for r in results if r["day"] == last) == 11 + 8 - 2


def _sent_by_day(results: list[dict]) -> dict[tuple[str, str, date], int]:
    return {(r["journey_id"], r["variant"], r["day"]): r["sent"] for r in results}


def _sent_by_day_in_ledger(store: JourneyStore, results: list[dict]) -> dict[tuple[str, str, date], int]:
    """What gold.journey_results says was sent, counted from the whole ledger as it was before the
    store kept the counts: the `sent` rows of each journey and variant up to each day."""
    sent = [s for s in store.sends().to_pylist() if s["status"] == "sent"]
    return {(r["journey_id"], r["variant"], r["day"]): sum(
        1 for s in sent if (s["journey_id"], s["variant"]) == (r["journey_id"], r["variant"]) and s["tick_date"] <= r["day"])
        for r in results}
