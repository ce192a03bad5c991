"""The outbox's delivery guarantees across crashes and processes (handlers/kernel/outbox.py), on SQLite and
PostgreSQL: a claimed row whose request never started is sent after the lease; a broadcast whose
request was under way is never sent twice but given up as uncertain; a case notification in the same
state is sent again; a process whose lease lapsed cannot send or settle a row claimed since.

A "crash" here is a claim whose sender stops where a killed process would: the rows stay as the dead
process left them in the database, and a later claim (another process, or the restarted one) finds them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bench.support.fake_telegram import TOKEN, FakeTelegram
from bench.support.live_server import command
from bot.channels.telegram.limiter import RateLimiter
from bot.channels.telegram.sender import TelegramSender
from handlers.kernel.outbox import (
    UNCERTAIN,
    DeliveryError,
    Outbound,
    Reclaimed,
    claim,
    drain,
    enqueue,
    lease,
    mark_dispatched,
    settle,
)
from messages import render
from storage.models import OutboxMessage, OutboxStatus, utcnow
from tests.support.chat import Clock


class PlatformSender:
    """A sender that marks each row dispatched, as the real channels do, then records the delivery."""

    channel = "telegram"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock
        self.delivered: list[str] = []

    async def send(self, message: OutboxMessage) -> None:
        await mark_dispatched(self.sessions, message, self.clock())
        self.delivered.append(message.recipient)


async def add(sessions: async_sessionmaker[AsyncSession], clock: Clock, *outs: Outbound) -> None:
    async with sessions.begin() as session:
        for out in outs:
            enqueue(session, out, clock())


async def rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, OutboxMessage]:
    async with sessions() as session:
        return {r.recipient: r for r in (await session.scalars(select(OutboxMessage))).all()}


def notice(recipient: str) -> Outbound:
    return Outbound("telegram", recipient, "通知", kind="broadcast", dedup_key=f"bc:1:{recipient}")


async def test_claimed_rows_never_dispatched_are_sent_after_the_lease(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add(sessions, clock, *(notice(f"r{i}") for i in range(5)))
    crashed = await claim(sessions, "telegram", clock(), limit=5)
    assert len(crashed) == 5  # the process dies before sending any of them
    sender = PlatformSender(sessions, clock)
    assert await drain(sessions, sender, clock) == 0  # still leased to the dead process
    clock.advance(seconds=lease().total_seconds() + 1)
    assert await drain(sessions, sender, clock) == 5
    assert sorted(sender.delivered) == [f"r{i}" for i in range(5)]
    assert {r.status for r in (await rows(sessions)).values()} == {OutboxStatus.SENT}


async def test_a_broadcast_in_flight_at_a_crash_is_given_up_as_uncertain_not_sent_twice(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add(sessions, clock, notice("inflight"), notice("waiting"))
    inflight, _waiting = await claim(sessions, "telegram", clock())
    await mark_dispatched(sessions, inflight, clock())  # the request left; then the process died
    clock.advance(seconds=lease().total_seconds() + 1)
    sender = PlatformSender(sessions, clock)
    assert await drain(sessions, sender, clock) == 1
    assert sender.delivered == ["waiting"]
    found = await rows(sessions)
    assert (found["inflight"].status, found["inflight"].last_error) == (OutboxStatus.FAILED, UNCERTAIN)
    assert found["waiting"].status == OutboxStatus.SENT
    clock.advance(hours=1)
    assert await drain(sessions, sender, clock) == 0  # and never later either
    assert sender.delivered == ["waiting"]


async def test_a_case_notification_in_flight_at_a_crash_is_sent_again(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add(sessions, clock, Outbound("telegram", "worker", "新案件 #1", kind="notify", case_id=None))
    (row,) = await claim(sessions, "telegram", clock())
    await mark_dispatched(sessions, row, clock())
    clock.advance(seconds=lease().total_seconds() + 1)
    sender = PlatformSender(sessions, clock)
    assert await drain(sessions, sender, clock) == 1  # a repeated notice beats a lost one
    assert sender.delivered == ["worker"]


async def test_a_lapsed_claim_cannot_send_or_settle_a_row_claimed_again(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add(sessions, clock, notice("r1"))
    (slow,) = await claim(sessions, "telegram", clock())  # a process that stalls past its lease
    clock.advance(seconds=lease().total_seconds() + 1)
    (fresh,) = await claim(sessions, "telegram", clock())  # another process takes the row
    assert fresh.id == slow.id and fresh.claimed_by != slow.claimed_by
    with pytest.raises(Reclaimed):
        await mark_dispatched(sessions, slow, clock())
    await mark_dispatched(sessions, fresh, clock())
    await settle(sessions, slow, DeliveryError("late failure", retry_after=5), clock())  # ignored
    await settle(sessions, fresh, None, clock())
    row = (await rows(sessions))["r1"]
    assert (row.status, row.last_error) == (OutboxStatus.SENT, None)


async def test_the_drain_skips_a_row_it_no_longer_owns(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await add(sessions, clock, notice("r1"), notice("r2"))

    class Stalling(PlatformSender):
        """Stalls before the first row until the lease lapses and another process claims both rows."""

        stalled = False

        async def send(self, message: OutboxMessage) -> None:
            if not self.stalled:
                self.stalled = True
                self.clock.advance(seconds=lease().total_seconds() + 1)
                self.other = await claim(self.sessions, "telegram", self.clock())
            await super().send(message)

    stalling = Stalling(sessions, clock)
    assert await drain(sessions, stalling, clock) == 0
    assert stalling.delivered == []  # both rows belong to the other claim now
    assert [r.recipient for r in stalling.other] == ["r1", "r2"]


async def test_a_retry_clears_the_dispatch_mark(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # A send that failed with an answer (429, network error before the platform had it) is retried:
    # its dispatch mark goes, so a crash before the retry does not make it uncertain.
    await add(sessions, clock, notice("r1"))
    (row,) = await claim(sessions, "telegram", clock())
    await mark_dispatched(sessions, row, clock())
    await settle(sessions, row, DeliveryError("429 retry after 3s", retry_after=3), clock())
    stored = (await rows(sessions))["r1"]
    assert (stored.status, stored.dispatched_at, stored.claimed_by) == (OutboxStatus.PENDING, None, None)
    clock.advance(seconds=3)
    (again,) = await claim(sessions, "telegram", clock())
    assert again.attempts == 2
    clock.advance(seconds=lease().total_seconds() + 1)  # that claim dies before dispatching
    sender = PlatformSender(sessions, clock)
    assert await drain(sessions, sender, clock) == 1 and sender.delivered == ["r1"]


async def test_claim_takes_replies_first_then_the_oldest_due(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Replies before a broadcast backlog, oldest first; rows rescheduled for later are not taken yet.
    await add(sessions, clock, *(notice(f"b{i}") for i in range(3)))
    async with sessions.begin() as session:
        enqueue(session, notice("b3"), clock() + timedelta(minutes=5))
        enqueue(session, Outbound("telegram", "later", "稍后"), clock() + timedelta(minutes=5))
        for i in range(3):
            enqueue(session, Outbound("telegram", f"reply{i}", "回复"), clock())
        await session.flush()
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.kind == "broadcast").values(priority=-10)
        )
    taken = await claim(sessions, "telegram", clock(), limit=5)
    assert [r.recipient for r in taken] == ["reply0", "reply1", "reply2", "b0", "b1"]


# -- a platform outage: retried with capped back-off within a budget, then listed and retried ---------


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=telegram.api_url) as bot:
        yield bot


_chats = iter(range(700001, 800000))


def telegram_sender(bot: Bot, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> TelegramSender:
    # The limiter follows the test clock too, so a retry hours later is not held up by it.
    return TelegramSender(bot, sessions, RateLimiter(clock=lambda: clock().timestamp()), clock=clock)


async def row_of(sessions: async_sessionmaker[AsyncSession], row_id: int) -> OutboxMessage:
    async with sessions() as session:
        row = await session.get(OutboxMessage, row_id)
        assert row is not None
        return row


async def enqueue_one(sessions: async_sessionmaker[AsyncSession], clock: Clock, out: Outbound) -> int:
    async with sessions.begin() as session:
        row = enqueue(session, out, clock())
        await session.flush()
        return row.id


async def test_a_platform_outage_longer_than_the_old_budget_loses_nothing(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, telegram: FakeTelegram, bot: Bot
) -> None:
    chat = next(_chats)
    row_id = await enqueue_one(sessions, clock, Outbound("telegram", str(chat), "案件 #1 已受理", kind="ack"))
    sender = telegram_sender(bot, sessions, clock)
    telegram.go_down(502)
    try:
        start, gaps = clock(), []
        while clock() - start < timedelta(hours=2):  # the old budget gave up after 8 tries, ~256 s
            assert await drain(sessions, sender, clock) == 0
            row = await row_of(sessions, row_id)
            assert row.status == OutboxStatus.PENDING, row.last_error
            gaps.append(row.not_before - clock())
            clock.now = row.not_before  # the next try, without waiting for it
    finally:
        telegram.come_back()
    tries = [c for c in telegram.attempts(chat) if c.status == 502]
    assert len(tries) == len(gaps) > 8
    assert max(gaps) == timedelta(minutes=10)  # the back-off is capped
    assert await drain(sessions, sender, clock) == 1
    assert [c.text for c in telegram.sent(chat)] == ["案件 #1 已受理"]
    assert (await row_of(sessions, row_id)).status == OutboxStatus.SENT


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env["OUTREACH_DATABASE_URL"] = db_url
    return subprocess.run(
        [*command(), "outbox", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_past_its_budget_a_row_is_unreached_listed_masked_and_retried_by_the_operator(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, telegram: FakeTelegram, bot: Bot, db_url: str
) -> None:
    chat = next(_chats)
    reply = await enqueue_one(
        sessions, clock, Outbound("telegram", str(chat), "请回电 13812345678 联系网格员", kind="reply")
    )
    reminder = await enqueue_one(
        sessions, clock, Outbound("telegram", str(chat), "明天接种提醒", kind="reminder")
    )
    sender = telegram_sender(bot, sessions, clock)
    telegram.go_down(502)
    try:
        assert await drain(sessions, sender, clock) == 0
        clock.advance(hours=24, seconds=1)
        assert await drain(sessions, sender, clock) == 0
    finally:
        telegram.come_back()
    given_up = await row_of(sessions, reply)
    assert given_up.status == OutboxStatus.FAILED
    assert given_up.last_error is not None and given_up.last_error.startswith("unreached after 24 h: ")
    assert (await row_of(sessions, reminder)).status == OutboxStatus.PENDING  # reminders get 72 h

    listed = await asyncio.to_thread(cli, db_url, "failed")
    assert listed.returncode == 0, listed.stderr
    (line,) = [ln for ln in listed.stdout.splitlines() if ln.startswith(f"#{reply} ")]
    assert "unreached after 24 h" in line and "138****5678" in line
    assert "13812345678" not in listed.stdout and str(chat) not in listed.stdout

    retried = await asyncio.to_thread(cli, db_url, "retry", "--id", str(reply))
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines() == [render("outbox.retry_line", id=reply)]
    clock.now = max(clock(), utcnow())  # the operator retried it just now
    assert await drain(sessions, sender, clock) == 1
    clock.advance(seconds=1)  # one message a second to a chat
    assert await drain(sessions, sender, clock) == 1
    texts = sorted(c.text for c in telegram.sent(chat))
    assert texts == sorted(["请回电 13812345678 联系网格员", "明天接种提醒"])
    assert (await asyncio.to_thread(cli, db_url, "failed")).stdout.count(f"#{reply} ") == 0
    again = await asyncio.to_thread(cli, db_url, "retry", "--id", str(reply))  # no longer failed
    assert again.returncode == 1 and render("outbox.retry_not_failed", id=reply) in again.stderr

    # A broadcast that may have arrived (uncertain) is listed but not retried by --all; one that was
    # cancelled on purpose is neither.
    uncertain = await enqueue_one(sessions, clock, notice(f"{chat}-u"))
    cancelled = await enqueue_one(sessions, clock, notice(f"{chat}-c"))
    async with sessions.begin() as session:
        for row_id, reason in ((uncertain, UNCERTAIN), (cancelled, "cancelled")):
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(status=OutboxStatus.FAILED, last_error=reason)
            )
    listed = await asyncio.to_thread(cli, db_url, "failed")
    assert f"#{uncertain} " in listed.stdout and f"#{cancelled} " not in listed.stdout
    everything = await asyncio.to_thread(cli, db_url, "retry", "--all")
    assert everything.returncode == 0 and everything.stdout.strip() == render("outbox.failed_none")
    assert (await row_of(sessions, uncertain)).status == OutboxStatus.FAILED
    assert (await row_of(sessions, cancelled)).status == OutboxStatus.FAILED
