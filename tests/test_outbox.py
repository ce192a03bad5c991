"""The outbox's delivery guarantees across crashes and processes (handlers/outbox.py), on SQLite and
PostgreSQL: a claimed row whose request never started is sent after the lease; a broadcast whose
request was under way is never sent twice but given up as uncertain; a case notification in the same
state is sent again; a process whose lease lapsed cannot send or settle a row claimed since.

A "crash" here is a claim whose sender stops where a killed process would: the rows stay as the dead
process left them in the database, and a later claim (another process, or the restarted one) finds them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.outbox import (
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
from storage.models import OutboxMessage, OutboxStatus
from tests.conftest import Clock


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
