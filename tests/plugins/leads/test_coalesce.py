"""Webhook leads stored together answer as if each had been stored alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.testing.server import LiveServer
from qiao.plugins.leads.inbound import channels, coalesce
from qiao.plugins.leads.inbound.coalesce import Call, Coalescer, store_batch
from qiao.plugins.leads.inbound.routes import _receive, lead_values

from .test_api import _post_webhook

Create = Callable[..., Record]


def call(runtime: Runtime, channel: Record, message_id: str, **data: Any) -> Call:
    return Call(channel, message_id, data, lead_values(channel, data, runtime))


def test_a_batch_answers_each_call_as_storing_it_alone_would(
    qiao_runtime: Runtime, create: Create, get: Any, sales_team: dict[str, Record]
) -> None:
    made = create("lead_channel", name="官网", kind="WEBHOOK")
    channel = channels.find(qiao_runtime, made["key"], "WEBHOOK")
    assert channel is not None
    batch = [
        call(qiao_runtime, channel, "m1", 姓名="陈工", 手机="13905740001"),
        call(qiao_runtime, channel, "m2", 姓名="刘工", 手机="12"),  # not a phone number
        call(qiao_runtime, channel, "m1", 姓名="陈工", 手机="13905740001"),  # a replay
        call(qiao_runtime, channel, "m3", 姓名="陈先生", 手机="139 0574 0001"),  # same phone
        call(qiao_runtime, channel, "m4", 姓名="赵工", 手机="13905740004"),
    ]
    store_batch(qiao_runtime, batch)
    first, refused, replay, again, other = batch
    assert first.outcome is not None and first.outcome[0] == "received"
    assert refused.outcome is None and refused.error is not None
    assert refused.error.field == "mobile"
    assert replay.outcome == ("duplicate", first.outcome[1])
    assert again.outcome is not None and other.outcome is not None
    assert get("lead", again.outcome[1])["duplicate_of_id"] == first.outcome[1]
    assert get("lead", other.outcome[1])["duplicate_of_id"] is None
    with qiao_runtime.db.read() as conn:
        receipts = qiao_runtime.records.list(
            conn, "lead_webhook_receipt", first=10, actor=Actor.system()
        ).records
    assert sorted(r["message_key"].split(":")[1] for r in receipts) == ["m1", "m3", "m4"]
    owners = {get("lead", c.outcome[1])["owner_id"] for c in (first, again, other) if c.outcome}
    assert len(owners) == 2  # the round-robin rule took turns within the batch


def test_concurrent_webhook_calls_each_get_their_own_answer(
    qiao_server: LiveServer, create: Create, get: Any, sales_team: dict[str, Record]
) -> None:
    channel = create("lead_channel", name="官网", kind="WEBHOOK")
    answers: dict[str, Any] = {}

    def post(client: int) -> None:
        for i in range(6):
            message = f"c{client}-{i}"
            body = {"姓名": f"客户{message}", "手机": f"139057{client:02d}{i:03d}"}
            answers[message] = _post_webhook(qiao_server, channel, body, id=message)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers.values()} == {201}
    ids = {message: a.json()["id"] for message, a in answers.items()}
    assert len(set(ids.values())) == 48
    for message, lead_id in ids.items():
        assert get("lead", lead_id)["name"] == f"客户{message}"


def _senders(coalescer: Coalescer, channel: Record, senders: int, calls: int) -> None:
    """``senders`` threads, each sending ``calls`` calls one after another (as a webhook
    sender waits for each answer before the next)."""

    def send(sender: int) -> None:
        for i in range(calls):
            data = {"姓名": f"客户{sender}-{i}", "手机": f"1390574{sender}{i:03d}"}
            values = lead_values(channel, data, coalescer.runtime)
            coalescer.receive(channel, f"s{sender}-{i}", data, values)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch stored, in order."""
    sizes: list[int] = []
    real = coalesce.store_batch

    def counted(runtime: Runtime, batch: Sequence[Call]) -> None:
        sizes.append(len(batch))
        real(runtime, batch)

    monkeypatch.setattr(coalesce, "store_batch", counted)
    return sizes


@pytest.fixture
def webhook(qiao_runtime: Runtime, create: Create, sales_team: dict[str, Record]) -> Record:
    """A webhook channel as the webhook route finds it, with a team to route its leads to."""
    made = create("lead_channel", name="官网", kind="WEBHOOK")
    channel = channels.find(qiao_runtime, made["key"], "WEBHOOK")
    assert channel is not None
    return channel


def test_senders_answered_together_are_stored_together(
    qiao_runtime: Runtime, webhook: Record, batch_sizes: list[int]
) -> None:
    coalescer = Coalescer(qiao_runtime, _receive, linger=0.5)
    _senders(coalescer, webhook, senders=4, calls=3)
    # The first writer takes whoever came first; from then on each writer waits for the
    # senders the last batch answered, instead of settling into pairs of batches (3, 1, 3, 1).
    assert sum(batch_sizes) == 12
    assert batch_sizes[1] == 4 and set(batch_sizes[1:-1]) == {4}, batch_sizes
    assert _count(qiao_runtime, "lead") == 12


def test_a_single_sender_never_waits(
    qiao_runtime: Runtime, webhook: Record, batch_sizes: list[int]
) -> None:
    coalescer = Coalescer(qiao_runtime, _receive, linger=60)
    started = time.monotonic()
    _senders(coalescer, webhook, senders=1, calls=3)
    assert batch_sizes == [1, 1, 1]
    assert time.monotonic() - started < 30  # no batch waited for calls that never come


def _count(runtime: Runtime, entity: str) -> int:
    with runtime.db.read() as conn:
        page = runtime.records.list(conn, entity, first=100, with_total=True, actor=Actor.system())
    assert page.total_count is not None
    return page.total_count


def test_a_batch_judged_partly_against_an_older_channel_stores_nothing(
    qiao_runtime: Runtime, webhook: Record
) -> None:
    # One call was judged against the channel as it was before a new secret, another
    # against the channel as it is now: the first must be judged again, so nothing is
    # stored and both are told the channel changed.
    with qiao_runtime.records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        qiao_runtime.records.update(ctx, "lead_channel", webhook["id"], {"secret": "whsec_new"})
    fresh = channels.find(qiao_runtime, webhook["key"], "WEBHOOK")
    assert fresh is not None and fresh["version"] != webhook["version"]
    batch = [
        call(qiao_runtime, fresh, "now", 姓名="陈工", 手机="13905740001"),
        call(qiao_runtime, webhook, "before", 姓名="刘工", 手机="13905740002"),
    ]
    with pytest.raises(channels.ChannelChanged):
        store_batch(qiao_runtime, batch)
    assert _count(qiao_runtime, "lead") == 0
