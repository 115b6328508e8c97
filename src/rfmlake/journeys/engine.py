"""The journey engine: one tick advances every journey as of the lake's run date.

A tick
1. finishes a tick a crash interrupted (its plan and journal are in the store: rfmlake.journeys.store);
2. plans: for each journey, the customers its trigger admits at each as_of date it has not seen
   (audience filters, consent, re-entry), assigned to the holdout or a variant by hash
   (rfmlake.journeys.assignment); then every active entry walks its steps as far as it can today:
   waits that are over, branches, and sends, which frequency caps and quiet hours may stop;
3. writes the plan, the entries as they will be and the state before the first send;
4. sends batch by batch through the channel's destination (the activation Destination port, with
   its retries), journaling each batch; consent, address, the erasure suppression list and quiet
   hours are checked again when sending (a tick resumed after a crash, or one that sends for a long
   time, may reach a batch inside quiet hours: its messages are deferred, recorded `deferred` in the
   ledger and planned again by the first tick outside the window);
5. commits: the entries, the ledger of this tick's messages and the state become current.

Exactly once per customer and step: a step is planned once (the plan moves the entry past it), and
a batch is sent once (the journal). A crash between a send and its journal record leaves the batch
in doubt: a replay-safe destination (the outbox, EventBridge, Connect with its clientToken) gets it
again and absorbs it; an email or a text is never repeated, it is sent one per batch and recorded
`in_doubt` (docs/journeys.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from rfmlake.activation.audience import load_contacts
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.engine import deliver
from rfmlake.activation.model import Change, Message, SyncReport
from rfmlake.activation.retry import RetryPolicy
from rfmlake.journeys.assignment import HOLDOUT, bucket, group_of
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.spec import (
    EXIT,
    NEXT,
    RECOMMENDATION_FIELDS,
    Journey,
    JourneySet,
    QuietHours,
    Step,
    placeholders,
    render,
)
from rfmlake.journeys.store import DEFERRED, ENTRY_SCHEMA, PLAN_SCHEMA, SEND_SCHEMA, SENT, JourneyStore
from rfmlake.journeys.triggers import LakeView
from rfmlake.lake import Lake
from rfmlake.lake.locks import exclusive_lock
from rfmlake.settings import Settings

ACTIVE, HELD_OUT, COMPLETED, EXITED, CONVERTED = "active", "holdout", "completed", "exited", "converted"
FAILED, SKIPPED, CAPPED, IN_DOUBT = "failed", "skipped", "capped", "in_doubt"
# The address a channel needs (activation's Channel): an event carries none, consent still applies.
_CONTACT_CHANNEL = {"email": "email", "sms": "phone", "event": "none"}


def message_id(journey_id: str, customer_id: str, entry_date: date, step_id: str) -> str:
    """Deterministic per (journey, entry, step): a replayed batch carries the same ids."""
    key = f"{journey_id}\x1f{customer_id}\x1f{entry_date.isoformat()}\x1f{step_id}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class TickReport:
    as_of: str = ""
    tick: str | None = None
    status: str = "advanced"             # advanced, up_to_date
    resumed: str | None = None           # the id of an interrupted tick this run finished
    entered: Counter[str] = field(default_factory=Counter)        # journey -> customers entered
    groups: dict[str, Counter[str]] = field(default_factory=dict)  # journey -> group -> entered
    exited: Counter[str] = field(default_factory=Counter)         # status -> entries that ended now
    planned: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0
    capped: int = 0
    # message id -> channel of every send held for quiet hours at the end of the run (a message a resumed
    # tick deferred and this run's planning holds again is one message)
    held: dict[str, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)        # reason -> messages not sent
    retries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def deferred(self) -> Counter[str]:
        """channel -> sends held for quiet hours"""
        return Counter(self.held.values())

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "tick": self.tick, "status": self.status, "resumed": self.resumed,
                "entered": dict(sorted(self.entered.items())),
                "groups": {j: dict(sorted(g.items())) for j, g in sorted(self.groups.items())},
                "exited": dict(sorted(self.exited.items())), "planned": self.planned, "sent": self.sent,
                "failed": self.failed, "in_doubt": self.in_doubt, "capped": self.capped,
                "deferred": dict(sorted(self.deferred.items())), "skipped": dict(sorted(self.skipped.items())),
                "retries": self.retries, "notes": list(self.notes)}

    def render(self) -> str:
        head = f"journeys as of {self.as_of}: {self.status}" + (f" (tick {self.tick})" if self.tick else "")
        lines = [head]
        if self.resumed:
            lines.append(f"  finished the interrupted tick {self.resumed}")
        for journey, n in sorted(self.entered.items()):
            groups = ", ".join(f"{g}={c}" for g, c in sorted(self.groups.get(journey, {}).items()))
            lines.append(f"  {journey}: {n} entered ({groups or 'none'})")
        lines.append(f"  messages: planned {self.planned}, sent {self.sent}, failed {self.failed}, "
                     f"in doubt {self.in_doubt}, capped {self.capped}, retries {self.retries}")
        if self.deferred:
            lines.append("  held for quiet hours: " + ", ".join(f"{k}={v}" for k, v in sorted(self.deferred.items())))
        if self.skipped:
            lines.append("  not sent: " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        if self.exited:
            lines.append("  ended: " + ", ".join(f"{k}={v}" for k, v in sorted(self.exited.items())))
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _lock(store: JourneyStore) -> contextlib.AbstractContextManager[None]:
    if not store.is_local:  # on AWS one pipeline run at a time holds the lake (the state machine's lease)
        return contextlib.nullcontext()
    return exclusive_lock(Path(store.root) / ".lock", JourneyError("journeys are already being advanced on this lake"))


def advance(lake: Lake, journeys: JourneySet, senders: Mapping[str, Destination], *,
            settings: Settings | None = None, state_location: str | None = None,
            now: datetime | None = None, clock: Callable[[], datetime] | None = None,
            policy: RetryPolicy | None = None) -> TickReport:
    """Advance every journey of `journeys` as of the lake's latest run, sending through `senders`
    (channel -> destination: email, sms, call, event). `state_location` is the lake whose
    `_system/journeys/` keeps the state (default `lake`; the real lake when `lake` is a workspace
    copy of it).

    `now` is when the tick is planned; `clock` tells the time each batch is sent at, when quiet
    hours are checked again. Both default to the machine's clock; given only `now`, the clock
    stands still at `now`."""
    if clock is None:
        clock = _stopped_at(now) if now is not None else _machine_clock
    now = now or clock()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    policy = policy or RetryPolicy()
    settings = settings or Settings()
    missing = sorted({c for j in journeys.journeys for c in j.sending_channels} - set(senders))
    if missing:
        raise JourneyError(f"no destination for channel(s) {missing}")
    for destination in senders.values():
        if not destination.sends_messages:
            raise JourneyError(f"destination {destination.name!r} does not send journey messages")
    store = JourneyStore(state_location or lake.location)
    report = TickReport()
    with _lock(store):
        meta = store.meta()
        state = store.state()
        if meta is not None and meta["tick"] == state.get("tick"):
            store.clean()  # committed, crashed before cleaning up
        elif meta is not None:
            _send_and_commit(store, meta, lake, senders, settings, policy, report, _quiet_windows(meta, journeys),
                             clock)
            report.resumed = meta["tick"]
            state = store.state()
        view = LakeView(lake)
        try:
            before = store.entries(state)  # read once: planned from, then compared with what planning made
            plan, entries, after = _plan(view, lake, journeys, store, state, before, now, settings, report)
            plan = assign_batches(plan, senders)
        finally:
            view.close()
        report.as_of = after["as_of"]
        if plan.num_rows == 0 and _same(entries, before) and after["journeys"] == state.get("journeys"):
            report.status = "up_to_date"
            return report
        tick = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"  # sortable by when it was planned
        meta = {"tick": tick, "as_of": after["as_of"], "planned_at": now.isoformat(),
                "batches": max(plan.column("batch").to_pylist(), default=-1) + 1,
                "quiet_hours": _quiet_hours_of(journeys)}
        store.start(meta, plan, entries, after)
        report.tick = tick
        _send_and_commit(store, meta, lake, senders, settings, policy, report, _quiet_windows(meta, journeys),
                         clock)
    return report


def _machine_clock() -> datetime:
    return datetime.now(UTC)


def _stopped_at(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def _same(a: pa.Table, b: pa.Table) -> bool:
    key = [("journey_id", "ascending"), ("customer_id", "ascending"), ("entry_date", "ascending")]
    return a.num_rows == b.num_rows and a.sort_by(key).equals(b.sort_by(key))


# ------------------------------------------------------------------------------------- planning
@dataclass
class _Caps:
    """Messages per customer and channel on each day, from the ledger and this tick's plan."""

    days: dict[tuple[str, str], list[date]]
    COLUMNS = ("customer_id", "channel", "tick_date", "status")  # of the ledger

    @classmethod
    def from_ledger(cls, store: JourneyStore, state: dict[str, Any], since: date) -> _Caps:
        """The ledger's messages sent on `since` or later: only the ledger files of those days are
        read (JourneyStore.sends), and only the columns the caps need."""
        import pyarrow.compute as pc

        sends = store.sends(state, since=since, columns=cls.COLUMNS)
        # a message in doubt may have gone out: it counts against the cap
        recent = sends.filter(pc.is_in(sends.column("status"), pa.array([SENT, IN_DOUBT])))
        days: dict[tuple[str, str], list[date]] = defaultdict(list)
        for row in recent.select(["customer_id", "channel", "tick_date"]).to_pylist():
            days[(row["customer_id"], row["channel"])].append(row["tick_date"])
        return cls(days)

    def count(self, customer_id: str, channel: str, since: date) -> int:
        return sum(1 for d in self.days.get((customer_id, channel), ()) if d >= since)

    def add(self, customer_id: str, channel: str, day: date) -> None:
        self.days.setdefault((customer_id, channel), []).append(day)


def _plan(view: LakeView, lake: Lake, journeys: JourneySet, store: JourneyStore, state: dict[str, Any],
          before: pa.Table, now: datetime, settings: Settings, report: TickReport
          ) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    as_of = view.as_of
    dates = [d for d in view.history_dates() if d <= as_of]
    previous_state = state.get("journeys", {})
    entries = before.to_pylist()
    by_customer: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_customer[(entry["journey_id"], entry["customer_id"])].append(entry)
    longest_cap = max([lim.per_days for j in journeys.journeys for lim in j.channels.values()] or [1])
    caps = _Caps.from_ledger(store, state, as_of - timedelta(days=longest_cap))
    deferred = _pending_deferred(store.deferred(state))
    plan: list[dict[str, Any]] = []
    after: dict[str, Any] = {}
    # per journey that moves: the sends its entries reached, and the entries that left it now
    walked: list[tuple[Journey, list[_Due], dict[tuple[str, date], str]]] = []
    for journey in journeys.journeys:
        known = dict(previous_state.get(journey.id, {}))
        if known.get("digest") and known["digest"] != journey.digest:
            report.notes.append(f"{journey.id}: the definition changed since the last run; entries so far keep "
                                "their group and continue at their next step")
        if journey.status == "paused":
            after[journey.id] = {**known, "digest": journey.digest, "status": "paused"}
            continue
        processed = date.fromisoformat(known["processed_through"]) if known.get("processed_through") else None
        todo = [d for d in dates if (d == as_of if processed is None else processed < d)]
        todo = [d for d in todo if (journey.start_date is None or d >= journey.start_date)
                and (journey.end_date is None or d <= journey.end_date)]
        for index, day in enumerate(todo):
            earlier = [d for d in dates if d < day]
            new = _enter(view, lake, journey, day, earlier[-1] if earlier else None,
                         first_run=processed is None and index == 0, by_customer=by_customer, settings=settings)
            for entry in new:
                entries.append(entry)
                by_customer[(journey.id, entry["customer_id"])].append(entry)
                report.entered[journey.id] += 1
                report.groups.setdefault(journey.id, Counter())[entry["variant"]] += 1
        # never backwards: a run for an earlier as_of (a backfill) must not process dates again
        through = max([d for d in (processed, todo[-1] if todo else None) if d is not None], default=None)
        first = known.get("first_as_of") or (todo[0].isoformat() if todo else None)
        after[journey.id] = {"digest": journey.digest, "status": journey.status,
                             "processed_through": through.isoformat() if through else None, "first_as_of": first}
        active = [e for e in entries if e["journey_id"] == journey.id and e["status"] == ACTIVE]
        walked.append((journey, *_walk(view, journey, active, as_of, now, report)))
    # Messages deferred when they came to be sent go before the new ones of every journey: they were
    # planned first, so the frequency caps count them first. They are planned after the walk, which
    # tells who left a journey since (a deferred message is not sent to them).
    due: list[_Due] = []
    for journey, _, left in walked:
        skipped, again = _replan_deferred(view, journey, deferred.get(journey.id, []), by_customer, left, as_of,
                                          now, report)
        plan.extend(skipped)
        due.extend(again)
    due.extend(d for _, steps, _ in walked for d in steps)
    plan.extend(_render(view, journeys, due, as_of, caps))
    return _batched(plan, report), pa.Table.from_pylist(entries, schema=ENTRY_SCHEMA), \
        {"version": 1, "as_of": as_of.isoformat(), "journeys": after}


def _enter(view: LakeView, lake: Lake, journey: Journey, day: date, previous: date | None, *, first_run: bool,
           by_customer: dict[tuple[str, str], list[dict[str, Any]]], settings: Settings) -> list[dict[str, Any]]:
    triggered = view.triggered(journey, day, previous, first_run=first_run)
    allowed = [c for c in triggered if _may_enter(journey, by_customer.get((journey.id, c), []), day)]
    allowed = sorted(view.matching(allowed, journey.audience.where))
    if journey.audience.require_consent and allowed:
        contacts = load_contacts(lake, allowed, "none", settings)
        allowed = [c for c in allowed if contacts[c].reachable]
    first = journey.steps[0].id
    out = []
    for customer_id in allowed:
        b = bucket(journey.id, customer_id, journey.salt)
        variant = group_of(b, journey.holdout_percent, journey.variants)
        held = variant == HOLDOUT
        out.append({"journey_id": journey.id, "customer_id": customer_id, "entry_date": day,
                    "group": HOLDOUT if held else "treatment", "variant": variant, "bucket": b,
                    "salt": journey.salt, "trigger": triggered[customer_id],
                    "status": HELD_OUT if held else ACTIVE, "next_step": None if held else first,
                    "wait_until": None, "exit_date": None, "exit_reason": None})
    return out


def _may_enter(journey: Journey, earlier: list[dict[str, Any]], day: date) -> bool:
    if not earlier:
        return True
    if journey.reentry_after_days is None:
        return False
    if any(e["status"] == ACTIVE for e in earlier):
        return False
    last = max(e["entry_date"] for e in earlier)
    return (day - last).days >= journey.reentry_after_days


def _in_quiet_hours(journey: Journey, channel: str, now: datetime) -> bool:
    limits = journey.channels.get(channel)  # type: ignore[call-overload]
    return limits is not None and limits.quiet_hours is not None and _covers(limits.quiet_hours, now)


def _covers(window: QuietHours, at: datetime) -> bool:
    if at.tzinfo is None:
        raise ValueError("the clock must tell timezone-aware times")
    return window.covers(at.astimezone(ZoneInfo(window.timezone)).time())


def _quiet_hours_of(journeys: JourneySet) -> dict[str, dict[str, dict[str, str]]]:
    """Each journey's quiet hours per channel, as the tick's meta keeps them: a tick finished after
    a crash keeps the windows it was planned with."""
    return {j.id: {channel: limits.quiet_hours.model_dump(mode="json")
                   for channel, limits in j.channels.items() if limits.quiet_hours is not None}
            for j in journeys.journeys if any(lim.quiet_hours is not None for lim in j.channels.values())}


def _quiet_windows(meta: dict[str, Any], journeys: JourneySet) -> dict[tuple[str, str], QuietHours]:
    """(journey, channel) -> quiet hours for sending a tick; a tick planned before meta recorded
    them takes the journeys' current windows."""
    recorded = meta.get("quiet_hours")
    source = recorded if recorded is not None else _quiet_hours_of(journeys)
    return {(journey_id, channel): QuietHours(**window)
            for journey_id, channels in source.items() for channel, window in channels.items()}


def _pending_deferred(pending: pa.Table) -> dict[str, list[dict[str, Any]]]:
    """journey -> the ledger rows of messages deferred for quiet hours and not yet sent (nor
    skipped, capped, failed or in doubt) by a later tick, oldest first (JourneyStore.deferred)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in pending.to_pylist():
        out[row["journey_id"]].append(row)
    return out


def _replan_deferred(view: LakeView, journey: Journey, deferred: list[dict[str, Any]],
                     by_customer: dict[tuple[str, str], list[dict[str, Any]]],
                     left: dict[tuple[str, date], str], as_of: date, now: datetime,
                     report: TickReport) -> tuple[list[dict[str, Any]], list[_Due]]:
    """The messages a tick deferred at send time (the entries moved past those steps when they were
    first planned): (skipped rows, with why, for those never to be sent; those to plan again, to be
    rendered anew and capped as their channel says now). One still in quiet hours stays deferred.

    Skipped, whatever the hour: a message whose step is gone; one to a customer who converted (an
    order in the goal window, with exit_on_goal), whatever became of the entry (one whose last step
    it was completed when it was planned); one to a customer this tick's walk took out of the journey
    (`left`: a branch or a removed step; an exit step is a planned end, like the last step). Each
    tick checks every held message, so an entry that ended before this tick ended in the tick that
    planned the message, after it, and that tick meant to send it. Consent, address and the
    suppression list are checked when the batch is sent, as for every message."""
    if not deferred:
        return [], []
    steps = {s.id: s for s in journey.steps}
    keys = pa.Table.from_pylist([{"journey_id": journey.id, "customer_id": r["customer_id"],
                                  "entry_date": r["entry_date"]} for r in deferred],
                                schema=pa.schema([ENTRY_SCHEMA.field(n) for n in ("journey_id", "customer_id",
                                                                                   "entry_date")]))
    first_order = view.first_orders(keys, as_of) if journey.goal.exit_on_goal else {}
    skipped: list[dict[str, Any]] = []
    again: list[_Due] = []
    for row in deferred:
        step = steps.get(row["step_id"])
        entry = next((e for e in by_customer.get((journey.id, row["customer_id"]), [])
                      if e["entry_date"] == row["entry_date"]), None)
        key = (row["customer_id"], row["entry_date"])
        reason = None
        if step is None or step.channel != row["channel"]:
            reason = f"step {row['step_id']!r} is no longer a {row['channel']} step of the journey"
        elif (_converts(journey, row["entry_date"], first_order.get((journey.id, *key)))
              or (entry is not None and entry["status"] == CONVERTED)):
            reason = "converted before the message could be sent"
        elif key in left:
            reason = f"left the journey ({left[key]}) before the message could be sent"
        if reason is not None:
            report.held.pop(row["message_id"], None)  # held by the tick this run resumed, settled now
            skipped.append({**_message_key(journey, row), "status": SKIPPED, "reason": reason})
            continue
        assert step is not None
        if _in_quiet_hours(journey, row["channel"], now):
            report.held[row["message_id"]] = row["channel"]
            continue  # still quiet: it stays deferred in the ledger
        report.held.pop(row["message_id"], None)  # deferred by the tick this run resumed, planned now
        again.append(_Due(journey, step, row))
    return skipped, again


def _converts(journey: Journey, entry_date: date, ordered_on: date | None) -> bool:
    """An order that ends the entry: the goal reached within its window, where the goal exits."""
    return (journey.goal.exit_on_goal and ordered_on is not None
            and ordered_on < entry_date + timedelta(days=journey.goal.within_days))


@dataclass(frozen=True)
class _Due:
    """A send step an entry (or a deferred message's ledger row: customer_id, entry_date, variant)
    reached: rendered, and capped, once the tick knows every message in cap order (_render)."""

    journey: Journey
    step: Step
    entry: dict[str, Any]


def _walk(view: LakeView, journey: Journey, active: list[dict[str, Any]], as_of: date, now: datetime,
          report: TickReport) -> tuple[list[_Due], dict[tuple[str, date], str]]:
    """Move each active entry through its steps as far as it goes today: (the sends it reached, in
    order; (customer, entry date) -> why, for the entries that left the journey before its end)."""
    if not active:
        return [], {}
    table = pa.Table.from_pylist(active, schema=ENTRY_SCHEMA)
    first_order = view.first_orders(table, as_of)
    ids = [e["customer_id"] for e in active]
    uses_left = any(s.branch is not None and s.branch.condition == "left_segment" for s in journey.steps)
    still = view.still_matching(journey, ids) if uses_left else set()
    steps = {s.id: i for i, s in enumerate(journey.steps)}
    due: list[_Due] = []
    left: dict[tuple[str, date], str] = {}

    def end(entry: dict[str, Any], status: str, reason: str, *, early: bool = True) -> None:
        entry.update(status=status, exit_date=as_of, exit_reason=reason, next_step=None, wait_until=None)
        report.exited[status] += 1
        if early:
            left[(entry["customer_id"], entry["entry_date"])] = reason

    for entry in active:
        key = (journey.id, entry["customer_id"], entry["entry_date"])
        ordered_on = first_order.get(key)
        if _converts(journey, entry["entry_date"], ordered_on):
            assert ordered_on is not None
            end(entry, CONVERTED, f"ordered on {ordered_on.isoformat()}")
            continue
        while entry["status"] == ACTIVE:
            if entry["next_step"] not in steps:
                end(entry, EXITED, f"step {entry['next_step']!r} is no longer in the journey")
                break
            index = steps[entry["next_step"]]
            step = journey.steps[index]
            following = journey.steps[index + 1].id if index + 1 < len(journey.steps) else None
            if step.wait is not None:
                if entry["wait_until"] is None:
                    entry["wait_until"] = as_of + timedelta(days=step.wait.days)
                if as_of < entry["wait_until"]:
                    break
                entry["wait_until"] = None
            elif step.branch is not None:
                if step.branch.condition == "ordered":
                    taken = ordered_on is not None
                else:
                    taken = entry["customer_id"] not in still
                target = step.branch.then if taken else step.branch.otherwise
                if target == EXIT:
                    end(entry, EXITED, f"branch {step.id}: {'' if taken else 'not '}{step.branch.condition}")
                    break
                if target != NEXT:
                    entry["next_step"] = target
                    continue
            elif step.exit is not None:
                end(entry, EXITED, f"exit step {step.id}", early=False)
                break
            else:
                channel = str(step.channel)
                if _in_quiet_hours(journey, channel, now):
                    report.held[message_id(journey.id, entry["customer_id"], entry["entry_date"], step.id)] = channel
                    break  # the step waits for the next run outside quiet hours
                due.append(_Due(journey, step, entry))
            if following is None:
                end(entry, COMPLETED, "last step done", early=False)
                break
            entry["next_step"] = following
    return due, left


def _render(view: LakeView, journeys: JourneySet, due: list[_Due], as_of: date, caps: _Caps) -> list[dict[str, Any]]:
    """The plan's rows of `due`, in its order (the order the caps count them in). The customers'
    recommended products are read only for the messages whose text names them."""
    recommended = [d.entry["customer_id"] for d in due if _names_recommendations(journeys, d.step, d.entry["variant"])]
    facts = view.current_segments([d.entry["customer_id"] for d in due], recommended_for=recommended)
    return [_message(journeys, d.journey, d.step, d.entry, facts.get(d.entry["customer_id"], {}), as_of, caps)
            for d in due]


def _names_recommendations(journeys: JourneySet, step: Step, variant: str) -> bool:
    if step.email is not None:
        template = journeys.templates[step.email.template_for(variant)]
        texts = [template.subject, template.text, template.html or ""]
    elif step.sms is not None:
        texts = [step.sms.text_for(variant)]
    else:
        return False
    return any(name in RECOMMENDATION_FIELDS for text in texts for name in placeholders(text))


def _message(journeys: JourneySet, journey: Journey, step: Step, entry: dict[str, Any], facts: dict[str, Any],
             as_of: date, caps: _Caps) -> dict[str, Any]:
    channel = str(step.channel)
    variant = entry["variant"]
    row: dict[str, Any] = {**_message_key(journey, {**entry, "step_id": step.id, "channel": channel}),
                           "segment": facts.get("rfm_segment"), "status": "send", "reason": None}
    limits = journey.channels.get(channel)  # type: ignore[call-overload]
    if limits is not None and limits.max_messages is not None:
        since = as_of - timedelta(days=limits.per_days - 1)
        if caps.count(entry["customer_id"], channel, since) >= limits.max_messages:
            row.update(status=CAPPED, reason=f"{limits.max_messages} per {limits.per_days} days")
            return row
    caps.add(entry["customer_id"], channel, as_of)
    fields = {**facts, "segment": facts.get("rfm_segment"), "customer_id": entry["customer_id"],
              "journey_id": journey.id, "journey_name": journey.name, "variant": variant, "step_id": step.id}
    if isinstance(fields.get("monetary"), float):
        fields["monetary"] = f"{fields['monetary']:.2f}"
    if step.email is not None:
        name = step.email.template_for(variant)
        template = journeys.templates[name]
        row.update(template=name, subject=render(template.subject, fields), text=render(template.text, fields),
                   html=render(template.html, fields) if template.html else None)
    elif step.sms is not None:
        row["text"] = render(step.sms.text_for(variant), fields)
    elif step.call is not None:
        row.update(campaign_id=step.call.campaign_id, call_channel=step.call.channel,
                   template_arn=step.call.template_arn)
    elif step.event is not None:
        row["detail_type"] = step.event.detail_type
    return row


def _message_key(journey: Journey, row: dict[str, Any]) -> dict[str, Any]:
    """The columns naming a message: customer_id, entry_date, variant, step_id and channel of `row`."""
    return {"message_id": message_id(journey.id, row["customer_id"], row["entry_date"], row["step_id"]),
            "batch": -1, "destination": None, "journey_id": journey.id, "customer_id": row["customer_id"],
            "entry_date": row["entry_date"], "step_id": row["step_id"], "channel": row["channel"],
            "variant": row["variant"]}


def _batched(plan: list[dict[str, Any]], report: TickReport) -> pa.Table:
    report.planned = sum(1 for r in plan if r["status"] == "send")
    report.capped = sum(1 for r in plan if r["status"] == CAPPED)
    return pa.Table.from_pylist(plan, schema=PLAN_SCHEMA) if plan else PLAN_SCHEMA.empty_table()


def assign_batches(plan: pa.Table, senders: Mapping[str, Destination]) -> pa.Table:
    """Number the batches: per destination and channel, up to `batch_size` messages (one for a
    destination that is not replay-safe), each customer at most once per batch (the Destination
    contract)."""
    rows = plan.to_pylist()
    order = sorted((i for i, r in enumerate(rows) if r["status"] == "send"),
                   key=lambda i: (senders[rows[i]["channel"]].name, rows[i]["channel"], rows[i]["journey_id"],
                                  rows[i]["step_id"], rows[i]["customer_id"]))
    batch, size, members, current = -1, 0, set(), None
    for i in order:
        destination = senders[rows[i]["channel"]]
        limit = destination.batch_size if destination.replay_safe else 1
        key = (destination.name, rows[i]["channel"])
        if key != current or size >= limit or rows[i]["customer_id"] in members:
            batch, size, members, current = batch + 1, 0, set(), key
        rows[i]["batch"] = batch
        rows[i]["destination"] = destination.name
        size += 1
        members.add(rows[i]["customer_id"])
    return pa.Table.from_pylist(rows, schema=PLAN_SCHEMA) if rows else plan


# -------------------------------------------------------------------------------------- sending
def _send_and_commit(store: JourneyStore, meta: dict[str, Any], lake: Lake, senders: Mapping[str, Destination],
                     settings: Settings, policy: RetryPolicy, report: TickReport,
                     quiet: Mapping[tuple[str, str], QuietHours], clock: Callable[[], datetime]) -> None:
    plan = store.plan().to_pylist()
    by_name = {d.name: d for d in senders.values()}
    unknown = sorted({r["destination"] for r in plan if r["status"] == "send"} - set(by_name))
    if unknown:
        raise JourneyError(f"tick {meta['tick']} was planned for destination(s) {unknown}, which are not "
                           f"configured now ({sorted(by_name)}); configure them to finish it")
    done, begun = store.journal()
    batches: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in plan:
        if row["status"] == "send":
            batches[row["batch"]].append(row)
    pending = {b: rows for b, rows in batches.items() if b not in done}
    contacts = _contacts(lake, [r for rows in pending.values() for r in rows], settings)
    as_of = meta["as_of"]
    session = SyncSession(lake_root=Path(lake.location) if lake.is_local else Path("."), gold_version=meta["tick"],
                          as_of=as_of, sync_id=meta["tick"], segments=(), full=False)
    opened = [by_name[name] for name in sorted({rows[0]["destination"] for rows in pending.values()})]
    sync_report = SyncReport(destination="journeys", gold_version=meta["tick"])
    for destination in opened:
        destination.open(session)
    for number in sorted(pending):
        rows = pending[number]
        destination = by_name[rows[0]["destination"]]
        if number in begun and not destination.replay_safe:
            # sent or not, nobody knows: an email or a text is never repeated
            store.record(number, {"in_doubt": [r["message_id"] for r in rows], "at": _now()})
            continue
        changes, skipped, deferred = [], {}, {}
        # Quiet hours are checked when the batch goes, not only when the tick was planned. A batch
        # whose send began before a crash is replayed as it was, even inside them: its messages went
        # out when it began (outside the window), and only the same batch again is absorbed.
        at = clock()
        for row in rows:
            window = quiet.get((row["journey_id"], row["channel"]))
            if window is not None and number not in begun and _covers(window, at):
                deferred[row["message_id"]] = f"quiet hours {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}"
                continue
            contact = contacts.get((row["customer_id"], row["channel"]))
            if contact is None or not contact.reachable:
                skipped[row["message_id"]] = contact.skipped if contact is not None else "not_in_customers"
                continue
            changes.append(_change(row, contact.email, contact.phone))
        if changes:
            store.begin(number)
        gave_up = deliver(destination, changes, policy, sync_report) if changes else []
        failed = {c.message.message_id: reason for c, reason in gave_up if c.message is not None}
        sent = [c.message.message_id for c in changes if c.message is not None and c.message.message_id not in failed]
        store.record(number, {"sent": sent, "failed": failed, "skipped": skipped, "deferred": deferred,
                              "at": _now()})
    for destination in opened:
        destination.close(session)
    report.retries += sync_report.retries
    done, _ = store.journal()
    ledger = _ledger(plan, done, meta, report)
    store.commit(meta, ledger)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _contacts(lake: Lake, rows: list[dict[str, Any]], settings: Settings) -> dict[tuple[str, str], Any]:
    """Consent, address and suppression for every pending message, read once when sending starts."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        wanted[_contact_channel(row)].add(row["customer_id"])
    out: dict[tuple[str, str], Any] = {}
    for contact_channel, ids in wanted.items():
        found = load_contacts(lake, ids, contact_channel, settings)  # type: ignore[arg-type]
        for row in rows:
            if _contact_channel(row) == contact_channel and row["customer_id"] in found:
                out[(row["customer_id"], row["channel"])] = found[row["customer_id"]]
    return out


def _contact_channel(row: dict[str, Any]) -> str:
    if row["channel"] == "call":
        return "email" if row.get("call_channel") == "email" else "phone"
    return _CONTACT_CHANNEL[row["channel"]]


def _change(row: dict[str, Any], email: str | None, phone: str | None) -> Change:
    message = Message(
        message_id=row["message_id"], journey_id=row["journey_id"], step_id=row["step_id"],
        variant=row["variant"], channel=row["channel"], subject=row["subject"], text=row["text"],
        html=row["html"], template=row["template"], campaign_id=row["campaign_id"],
        call_channel=row["call_channel"], template_arn=row["template_arn"], detail_type=row["detail_type"],
        attributes={"entry_date": row["entry_date"].isoformat()},
    )
    return Change("message", row["customer_id"], row["segment"] or "", email=email, phone=phone, message=message)


def _ledger(plan: list[dict[str, Any]], done: dict[int, dict[str, Any]], meta: dict[str, Any],
            report: TickReport) -> pa.Table:
    outcome: dict[str, tuple[str, str | None, str | None]] = {}
    for entry in done.values():
        at = entry.get("at")
        for mid in entry.get("sent", []):
            outcome[mid] = (SENT, None, at)
        for mid, reason in entry.get("failed", {}).items():
            outcome[mid] = (FAILED, reason, at)
        for mid, reason in entry.get("skipped", {}).items():
            outcome[mid] = (SKIPPED, reason, at)
        for mid in entry.get("in_doubt", []):
            outcome[mid] = (IN_DOUBT, "a crash interrupted the send; not repeated", at)
        for mid, reason in entry.get("deferred", {}).items():
            outcome[mid] = (DEFERRED, reason, None)
    rows = []
    tick_date = date.fromisoformat(meta["as_of"])
    for row in plan:
        if row["status"] != "send":  # capped, or a deferred message skipped when planned again
            status, reason, at = row["status"], row["reason"], None
        else:
            status, reason, at = outcome.get(row["message_id"], (IN_DOUBT, "no journal record", None))
        if status == SENT:
            report.sent += 1
        elif status == FAILED:
            report.failed += 1
        elif status == SKIPPED:
            report.skipped[str(reason)] += 1
        elif status == IN_DOUBT:
            report.in_doubt += 1
        elif status == DEFERRED:
            report.held[row["message_id"]] = row["channel"]
        rows.append({"message_id": row["message_id"], "journey_id": row["journey_id"],
                     "customer_id": row["customer_id"], "entry_date": row["entry_date"], "step_id": row["step_id"],
                     "channel": row["channel"], "variant": row["variant"], "tick_id": meta["tick"],
                     "tick_date": tick_date, "status": status, "reason": reason,
                     "sent_at": datetime.fromisoformat(at) if at else None})
    return pa.Table.from_pylist(rows, schema=SEND_SCHEMA) if rows else SEND_SCHEMA.empty_table()

