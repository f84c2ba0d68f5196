"""Webhook leads that arrive together are stored together: one transaction, one batch.

Transactions creating leads hold the leads' intake lock until they commit
(:mod:`qiao.plugins.leads.intake`), so concurrent webhook calls are stored one
transaction after another, and each pays for its own transaction, lock
hand-over and commit. Here the calls of one
process queue up instead: a call that finds nobody writing becomes the writer,
takes the waiting leads of its channel (its own first) and stores them in one
transaction, with their receipts looked up in one query and the leads and the
receipts created with ``create_many``; the calls that came meanwhile wait for
the next writer, which is one of them. Senders answered together send again
together, so a writer that finds fewer calls waiting than its channel's recent
batches held waits a moment for the rest (:meth:`Coalescer._gather`). Every
call still answers only after its own lead committed, with what storing it
alone would have answered:

- a webhook-id seen before (committed, or earlier in the same batch) answers
  ``duplicate`` with the first lead's id;
- leads sharing a phone, an e-mail or a company key go in separate batches
  within the transaction, so the later one finds the earlier as its duplicate,
  exactly as when they came one after another;
- a lead refused for its values answers its own error and stores nothing;
- when the batch as a whole is refused (a hook, a rule or a unique value), it
  is rolled back and each lead is stored alone, as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qiao.api import Actor, QiaoError, Record, Runtime, Source, WriteContext
from qiao.plugins.leads import dedupe
from qiao.plugins.leads.inbound import channels

#: The most leads one transaction stores; the rest wait for the next.
BATCH_LIMIT = 200
#: The longest a writer waits for more calls before storing a batch (seconds).
LINGER = 0.02
Outcome = tuple[str, str | None]
#: Stores one lead alone in its own transaction (the path without coalescing).
StoreOne = Callable[[Runtime, Record, str, dict[str, Any]], Outcome]


@dataclass
class Call:
    """One webhook call waiting for its lead to be stored."""

    channel: Record
    message_id: str
    data: dict[str, Any]
    values: dict[str, Any]
    outcome: Outcome | None = None
    error: BaseException | None = None
    finished: bool = False

    @property
    def message_key(self) -> str:
        return receipt_key(self.channel, self.message_id)


def receipt_key(channel: Record, message_id: str) -> str:
    """The receipt's key of a webhook-id: unique per channel."""
    return f"{channel['id']}:{message_id}"[:300]


@dataclass
class Coalescer:
    """The queue of one process's webhook calls, and whether one of them is writing."""

    runtime: Runtime
    store_one: StoreOne
    limit: int = BATCH_LIMIT
    linger: float = LINGER
    _queue: list[Call] = field(default_factory=list)
    _writing: bool = False
    #: By channel id: the calls of its last batch and those queued when it was stored.
    _in_hand: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: A batch was stored (its calls are finished, the next may write); every caller waits
    #: on it.
    _changed: threading.Condition = field(init=False)
    #: A call was queued; only a writer gathering its batch waits on it, so a call arriving
    #: does not wake the callers waiting for their batch.
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)
        self._arrived = threading.Condition(self._lock)

    def receive(
        self, channel: Record, message_id: str, data: dict[str, Any], values: dict[str, Any]
    ) -> Outcome:
        """Store a webhook's lead and its receipt; returns ``(status, lead id)``."""
        call = Call(channel, message_id, data, values)
        with self._changed:
            self._queue.append(call)
            self._arrived.notify()
            while self._writing and not call.finished:
                self._changed.wait()
            if not call.finished:
                self._writing = True
                self._gather(call)
                batch = self._take(call)
        if not call.finished:
            try:
                self._write(batch)
            finally:
                with self._changed:
                    channel_id = channel["id"]
                    self._in_hand[channel_id] = len(batch) + self._queued(channel_id)
                    self._writing = False
                    self._changed.notify_all()
        if call.error is not None:
            raise call.error
        assert call.outcome is not None
        return call.outcome

    def _gather(self, first: Call) -> None:
        """Wait, at most :attr:`linger`, until as many calls of ``first``'s channel are
        queued as were in hand when its last batch was stored.

        Senders answered by one batch send their next calls a few milliseconds
        later. Without waiting for them, the next writer takes only the calls that
        came while the last batch was stored, and batches settle into pairs (four
        leads and four, or one and seven, from eight senders), each pair costing two
        transactions where one would do. Waiting for the calls the channel had in
        hand, as PostgreSQL's ``commit_delay`` does for commits, stores them in one.
        A channel with one sender at a time never waits, and one whose senders stop
        waits once before its expectation falls. Called with the lock held; waiting
        releases it.
        """
        channel = first.channel["id"]
        expected = min(self._in_hand.get(channel, 0), self.limit)
        deadline = time.monotonic() + self.linger
        while self._queued(channel) < expected:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.wait(left)

    def _queued(self, channel: str) -> int:
        return sum(1 for call in self._queue if call.channel["id"] == channel)

    def _take(self, first: Call) -> list[Call]:
        """``first`` and the queued calls of its channel, up to the limit, in arrival order."""
        channel = first.channel["id"]
        batch = [first]
        for call in self._queue:
            if len(batch) >= self.limit:
                break
            if call is not first and call.channel["id"] == channel:
                batch.append(call)
        taken = {id(c) for c in batch}
        self._queue = [c for c in self._queue if id(c) not in taken]
        return batch

    def _write(self, batch: list[Call]) -> None:
        try:
            try:
                store_batch(self.runtime, batch)
            except QiaoError:
                for call in batch:  # refused as a whole: each lead alone, as without batching
                    call.outcome, call.error = None, None
                    try:
                        call.outcome = self.store_one(
                            self.runtime, call.channel, call.message_id, call.data
                        )
                    except QiaoError as exc:
                        call.error = exc
        except BaseException as exc:
            for call in batch:
                if call.outcome is None and call.error is None:
                    call.error = exc
            raise
        finally:
            for call in batch:
                call.finished = True


def store_batch(runtime: Runtime, batch: Sequence[Call]) -> None:
    """Store the leads and receipts of calls to one channel in one transaction; nothing,
    raising :class:`~.channels.ChannelChanged`, if a call was judged against the channel
    as it was before a change."""
    records = runtime.records
    channel = batch[0].channel
    with records.transaction(channels.channel_actor(channel), Source.CONNECTOR) as ctx:
        channels.require_unchanged(ctx, [call.channel for call in batch])
        keys = list(dict.fromkeys(call.message_key for call in batch))
        seen = records.list(
            ctx.connection,
            "lead_webhook_receipt",
            filter={"message_key": {"in": keys}},
            first=len(keys),
            actor=Actor.system(),
        )
        leads: dict[str, str | None] = {r["message_key"]: r["lead_id"] for r in seen.records}
        fresh: list[Call] = []
        for call in batch:
            if call.message_key in leads:
                call.outcome = ("duplicate", leads[call.message_key])
            elif any(c.message_key == call.message_key for c in fresh):
                continue  # answered below, once the first call with the key is stored
            else:
                fresh.append(call)
        for run in _runs(fresh):
            _store_run(ctx, channel, run)
        for call in batch:
            if call.outcome is None and call.error is None:
                first = next(c for c in fresh if c.message_key == call.message_key)
                if first.error is not None:
                    call.error = first.error
                else:
                    assert first.outcome is not None
                    call.outcome = ("duplicate", first.outcome[1])


def _runs(calls: Sequence[Call]) -> list[list[Call]]:
    """The calls cut where a lead shares a duplicate key with an earlier one of its run,
    so that each run's leads are looked up against the runs stored before it."""
    runs: list[list[Call]] = []
    taken: set[tuple[str, str]] = set()
    for call in calls:
        keys = set(dedupe.lead_keys(call.values).items())
        if not runs or keys & taken:
            runs.append([])
            taken = set()
        runs[-1].append(call)
        taken |= keys
    return runs


def _store_run(ctx: WriteContext, channel: Record, run: list[Call]) -> None:
    records = ctx.records
    created = records.create_many(ctx, "lead", [c.values for c in run], skip_invalid=True)
    for refused in created.refused:
        run[refused.index].error = refused.error
    stored = [run[i] for i in created.indexes]
    records.create_many(
        ctx,
        "lead_webhook_receipt",
        [
            {"message_key": call.message_key, "channel": channel["id"], "lead": lead["id"]}
            for call, lead in zip(stored, created.records, strict=True)
        ],
    )
    for call, lead in zip(stored, created.records, strict=True):
        call.outcome = ("received", lead["id"])
