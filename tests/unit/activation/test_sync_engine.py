"""The sync engine with in-memory and file destinations: incremental diffs, idempotency, resume, retries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from rfmlake.activation import ActivationError, Change, Destination, FileDestination, RecordFailure, RetryPolicy, sync
from rfmlake.activation.engine import state_dir
from rfmlake.activation.errors import RetryableError


class Recorder(Destination):
    """Keeps what it received; can crash after N batches or fail chosen customers."""

    def __init__(self, batch_size: int = 3, crash_after: int | None = None) -> None:
        self.name, self.channel, self.batch_size = "mem", "email", batch_size
        self.received: list[Change] = []
        self.crash_after = crash_after
        self.calls = 0
        self.throttle_first: int = 0
        self.fail_for_good: set[str] = set()

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        self.calls += 1
        if self.throttle_first:
            self.throttle_first -= 1
            raise RetryableError("ThrottlingException: slow down")
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt("killed mid-sync")
        ok = [c for c in batch if c.customer_id not in self.fail_for_good]
        self.received.extend(ok)
        return [RecordFailure(c.customer_id, "BadRequest: invalid address") for c in batch if c not in ok]


def no_sleep_policy(sleeps: list[float] | None = None, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, sleep=(sleeps.append if sleeps is not None else lambda _: None))


def test_second_sync_sends_exactly_the_enters_and_exits_and_a_third_sends_nothing(lake):
    write_customers(lake, 12, no_consent={11})
    write_rfm(lake, round_robin(12))
    dest = Recorder()
    first = sync(lake, dest, policy=no_sleep_policy())
    assert first.planned == {"entered": 11} and first.sent == 11
    assert first.skipped == Counter({"no_marketing_consent": 1})
    # the accepted record's address (trimmed), never the stale one nor the newer rejected one
    assert {c.email for c in dest.received} == {f"user{i}@example.com" for i in range(11)}

    segments = round_robin(12)
    segments["C000001"] = "Champions"          # moves from Loyal
    del segments["C000002"]                     # leaves gold
    segments["C000003"] = segments["C000003"]   # unchanged
    dest.received.clear()
    write_rfm(lake, segments, monetary={"C000004": 999.0})  # attribute change, same segment
    second = sync(lake, dest, policy=no_sleep_policy())
    got = {(c.kind, c.customer_id, c.segment, c.previous_segment) for c in dest.received}
    assert got == {("entered", "C000001", "Champions", "Loyal"), ("exited", "C000002", "At Risk", None),
                   ("changed", "C000004", "Champions", None)}
    assert second.sent == 3 and second.planned == {"changed": 1, "entered": 1, "exited": 1}
    exited = next(c for c in dest.received if c.kind == "exited")
    assert exited.email == "user2@example.com"  # resolved to unsubscribe

    dest.received.clear()
    third = sync(lake, dest, policy=no_sleep_policy())
    assert third.status == "up_to_date" and third.sent == 0 and dest.received == []


def test_a_new_day_without_new_orders_sends_nothing(lake):
    """Recency grows for everyone every day; destinations get last_order_date instead, so a daily run
    re-sends only customers whose segment, scores or orders changed."""
    from datetime import date

    write_customers(lake, 8)
    write_rfm(lake, round_robin(8), as_of=date(2026, 6, 1))
    dest = Recorder()
    assert sync(lake, dest, policy=no_sleep_policy()).sent == 8
    dest.received.clear()
    write_rfm(lake, round_robin(8), as_of=date(2026, 6, 2))  # the next day: every recency_days + 1
    assert sync(lake, dest, policy=no_sleep_policy()).sent == 0
    assert dest.received == []


def test_duplicate_trigger_for_same_version_sends_nothing_but_full_resends_all(lake):
    write_customers(lake, 5)
    write_rfm(lake, round_robin(5))
    dest = Recorder()
    sync(lake, dest)
    dest.received.clear()
    assert sync(lake, dest).status == "up_to_date"
    assert dest.received == []
    full = sync(lake, dest, full=True)
    assert full.full and full.sent == 5 and len(dest.received) == 5


def test_consent_withdrawn_exits_the_customer(lake):
    write_customers(lake, 4)
    write_rfm(lake, round_robin(4))
    dest = Recorder()
    sync(lake, dest)
    dest.received.clear()
    write_customers(lake, 4, no_consent={0})
    write_rfm(lake, round_robin(4))
    report = sync(lake, dest)
    assert [(c.kind, c.customer_id) for c in dest.received] == [("exited", "C000000")]
    assert report.skipped["no_marketing_consent"] == 1


def test_crash_mid_sync_then_restart_sends_every_record_exactly_once(lake):
    write_customers(lake, 20)
    write_rfm(lake, round_robin(20))
    crashing = Recorder(batch_size=3, crash_after=2)
    with pytest.raises(KeyboardInterrupt):
        sync(lake, crashing)
    assert len(crashing.received) == 6
    assert (state_dir(lake, "mem") / "inflight" / "journal.jsonl").is_file()
    restarted = Recorder(batch_size=3)
    report = sync(lake, restarted)
    assert report.resumed and report.sent == 20
    ids = [c.customer_id for c in crashing.received + restarted.received]
    assert sorted(ids) == sorted(round_robin(20)) and len(ids) == len(set(ids))
    assert sync(lake, Recorder()).status == "up_to_date"


def test_crashed_sync_of_an_older_version_is_folded_in_before_the_new_one(lake):
    write_customers(lake, 10)
    write_rfm(lake, round_robin(10))
    crashing = Recorder(batch_size=4, crash_after=1)
    with pytest.raises(KeyboardInterrupt):
        sync(lake, crashing)
    write_rfm(lake, round_robin(10))  # a new version, same membership
    later = Recorder(batch_size=4)
    sync(lake, later)
    ids = [c.customer_id for c in crashing.received + later.received]
    assert sorted(ids) == sorted(round_robin(10)) and len(ids) == len(set(ids))


def test_throttling_is_retried_with_backoff_and_permanent_failures_are_dead_lettered(lake):
    write_customers(lake, 6)
    write_rfm(lake, round_robin(6))
    dest = Recorder(batch_size=10)
    dest.throttle_first = 2
    dest.fail_for_good = {"C000003"}
    sleeps: list[float] = []
    report = sync(lake, dest, policy=no_sleep_policy(sleeps))
    assert report.retries == 2 and len(sleeps) == 2 and 0 <= sleeps[0] <= 0.1 and 0 <= sleeps[1] <= 0.2
    assert report.sent == 5 and report.failed == 1
    dead = [json.loads(line) for line in (state_dir(lake, "mem") / "dead_letter.jsonl").read_text().splitlines()]
    assert [(d["customer_id"], d["reason"]) for d in dead] == [("C000003", "BadRequest: invalid address")]
    assert "example.com" not in (state_dir(lake, "mem") / "dead_letter.jsonl").read_text()
    # Not delivered, so the next version's sync tries again.
    dest.fail_for_good.clear()
    dest.received.clear()
    write_rfm(lake, round_robin(6))
    sync(lake, dest)
    assert [c.customer_id for c in dest.received] == ["C000003"]


def test_retries_give_up_after_max_attempts(lake):
    write_customers(lake, 2)
    write_rfm(lake, round_robin(2))
    dest = Recorder()
    dest.throttle_first = 10
    report = sync(lake, dest, policy=no_sleep_policy(attempts=3))
    assert report.failed == 2 and report.sent == 0 and report.retries == 2
    assert "gave up after 3 attempts" in (state_dir(lake, "mem") / "dead_letter.jsonl").read_text()


def test_missing_gold_table_is_a_clear_error(lake):
    with pytest.raises(ActivationError, match="gold.customer_rfm does not exist"):
        sync(lake, Recorder())


def test_file_destination_end_to_end_and_resumed_export_is_complete(lake):
    write_customers(lake, 9)
    version = write_rfm(lake, round_robin(9))

    class CrashingFile(FileDestination):
        calls = 0

        def send(self, batch):
            CrashingFile.calls += 1
            if CrashingFile.calls == 3:
                raise KeyboardInterrupt
            return super().send(batch)

    with pytest.raises(KeyboardInterrupt):
        sync(lake, CrashingFile(batch_size=2))
    assert not (lake.root / "gold" / "_activation" / "file" / "2026-06-01").exists()  # nothing published
    dest = FileDestination(batch_size=2)
    sync(lake, dest)
    assert dest.output_dir == lake.root / "gold" / "_activation" / "file" / "2026-06-01" / version
    rows = [json.loads(line) for p in sorted(dest.output_dir.glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert sorted(r["customer_id"] for r in rows) == sorted(round_robin(9))
    csv_lines = (dest.output_dir / "champions.csv").read_text().splitlines()
    assert csv_lines[0].startswith("action,customer_id,email") and len(csv_lines) == 1 + 3
    manifest = json.loads((dest.output_dir / "_manifest.json").read_text())
    assert manifest["segments"]["Champions"] == {"entered": 3}
    assert lake.tables("gold")[0].name == "customer_rfm"  # the activation folder is not a table


def test_a_file_export_cut_short_and_superseded_publishes_what_it_delivered(lake):
    """A run that failed during activation leaves staged batches of a gold version that the next run
    replaces: those batches count as delivered (the next sync does not send them again), so they must
    be published, or their customers never reach an export."""
    write_customers(lake, 9)
    write_rfm(lake, round_robin(9))

    class CrashingFile(FileDestination):
        calls = 0

        def send(self, batch):
            CrashingFile.calls += 1
            if CrashingFile.calls == 3:
                raise KeyboardInterrupt
            return super().send(batch)

    with pytest.raises(KeyboardInterrupt):
        sync(lake, CrashingFile(batch_size=2))
    newer = write_rfm(lake, round_robin(9))  # the next run's gold version, same membership
    dest = FileDestination(batch_size=2)
    sync(lake, dest)
    exports = sorted((lake.root / "gold" / "_activation" / "file" / "2026-06-01").iterdir())
    assert len(exports) == 2 and dest.output_dir == exports[-1] and exports[-1].name == newer
    rows = [json.loads(line) for export in exports for p in sorted(export.glob("*.jsonl"))
            for line in p.read_text().splitlines()]
    assert sorted(r["customer_id"] for r in rows) == sorted(round_robin(9))  # every one, once
    assert not list((lake.root / "gold" / "_activation" / "file").glob(".staging-*"))


def test_a_batch_staged_but_never_journaled_is_dropped_when_superseded(lake):
    """Killed between writing a batch and journaling it, then superseded: the batch is not counted as
    delivered, so the next sync sends it; its staged copy (addresses) does not linger."""
    write_customers(lake, 5)
    write_rfm(lake, round_robin(5))

    class DiesAfterStaging(FileDestination):
        def send(self, batch):
            super().send(batch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(lake, DiesAfterStaging(batch_size=2))
    assert list((lake.root / "gold" / "_activation" / "file").glob(".staging-*/batch-*.jsonl"))
    write_rfm(lake, round_robin(5))
    dest = FileDestination(batch_size=2)
    sync(lake, dest)
    rows = [json.loads(line) for p in sorted(dest.output_dir.glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert sorted(r["customer_id"] for r in rows) == sorted(round_robin(5))
    assert len(list((lake.root / "gold" / "_activation" / "file").rglob("*.jsonl"))) == len(list(
        dest.output_dir.glob("*.jsonl")))  # one export, no staged leftovers
