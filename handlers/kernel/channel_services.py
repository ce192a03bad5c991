"""The kernel services channel adapters call, so that they only translate: the rows they need written
or read (the inbound log of a message the core does not handle, an outbox row, whether an account can
be reached) are written and read here, once for every channel.

An adapter reaches them with the ``sessions`` of its ``AdapterContext``
(``handlers.kernel.channel_ports``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox import Outbound, OutboxItem, enqueue
from handlers.kernel.reachability import is_unreachable as is_unreachable  # re-exported: one way to ask
from handlers.kernel.reachability import reachable_again as reachable_again
from handlers.kernel.reachability import set_unreachable as set_unreachable
from storage.database import is_sqlite
from storage.models import InboundMessage, OutboxMessage, OutboxStatus, Staff, StaffIdentity

Sessions = async_sessionmaker[AsyncSession]


async def inbound_seen(sessions: Sessions, channel: str, message_id: str) -> bool:
    """Whether the platform message's inbound row is committed (the core took it)."""
    async with sessions() as session:
        found = await session.scalar(
            select(InboundMessage.id).where(
                InboundMessage.channel == channel, InboundMessage.external_id == message_id
            )
        )
    return found is not None


async def reply_unhandled(
    sessions: Sessions,
    channel: str,
    message_id: str,
    sender: str,
    text: str | None,
    reply: str,
    now: datetime,
) -> bool:
    """Answer a message the core does not handle (a sticker, a member not yet bound) through the
    outbox, logging it in the inbound table first so a redelivered one is answered once. False when
    it was answered before."""
    try:
        async with sessions.begin() as session:
            seen = await session.scalar(
                select(InboundMessage.id).where(
                    InboundMessage.channel == channel, InboundMessage.external_id == message_id
                )
            )
            if seen is not None:
                return False
            session.add(
                InboundMessage(
                    channel=channel, external_id=message_id, sender=sender, received_at=now, text=text
                )
            )
            await session.flush()
            enqueue(session, Outbound(channel, sender, reply), now)
    except IntegrityError:
        return False  # the same message, taken by a concurrent delivery
    return True


async def queue_once(sessions: Sessions, out: Outbound, payload: dict[str, Any], now: datetime) -> None:
    """An outbox row with extra payload (a card update's response code), once per ``dedup_key``
    (INSERT … ON CONFLICT DO NOTHING: a second one is no error)."""
    values = {
        "channel": out.channel,
        "recipient": out.recipient,
        "kind": str(out.kind),
        "text": out.text,
        "payload": payload,
        "case_id": out.case_id,
        "dedup_key": out.dedup_key,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "not_before": now,
    }
    async with sessions.begin() as session:
        module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(module.insert(OutboxMessage).values(values).on_conflict_do_nothing())


async def first_reply(sessions: Sessions, outbox_ids: Sequence[int], recipient: str) -> str | None:
    """The first message a turn queued for ``recipient`` (a button's toast)."""
    if not outbox_ids:
        return None
    async with sessions() as session:
        return await session.scalar(
            select(OutboxMessage.text)
            .where(OutboxMessage.id.in_(list(outbox_ids)), OutboxMessage.recipient == recipient)
            .order_by(OutboxMessage.id)
            .limit(1)
        )


async def sent_row(sessions: Sessions, row_id: int, channel: str, recipient: str) -> OutboxItem | None:
    """An outbox row's values if it went to ``recipient`` on ``channel`` (the message a card or a
    button was on)."""
    async with sessions() as session:
        row = await session.get(OutboxMessage, row_id)
        if row is None or row.channel != channel or row.recipient != recipient:
            return None
        return OutboxItem.of(row)


async def active_staff_of(sessions: Sessions, channel: str, external_id: str) -> str | None:
    """The active staff member an account belongs to."""
    async with sessions() as session:
        found = await session.scalar(
            select(StaffIdentity.staff_id)
            .join(Staff, Staff.id == StaffIdentity.staff_id)
            .where(
                StaffIdentity.channel == channel,
                StaffIdentity.external_id == external_id,
                Staff.active.is_(True),
            )
        )
    return str(found) if found is not None else None


async def take_passive_reply(
    sessions: Sessions,
    outbox_ids: Sequence[int],
    channel: str,
    recipient: str,
    kinds: Collection[str],
    max_bytes: int,
    now: datetime,
    late: Callable[[], bool],
) -> tuple[int, str] | None:
    """The first pending row a turn queued for ``recipient`` (of ``kinds``, at most ``max_bytes``),
    marked sent so the outbox skips it: the channel answers it in the platform's reply to the request
    (WeChat's passive reply). None when there is none, when ``late()`` says the answer can no longer go,
    or when the drain loop took the row first."""
    if not outbox_ids:
        return None
    async with sessions.begin() as session:
        row = await session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.id.in_(list(outbox_ids)),
                OutboxMessage.channel == channel,
                OutboxMessage.recipient == recipient,
                OutboxMessage.kind.in_(list(kinds)),
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            .order_by(OutboxMessage.id)
            .limit(1)
        )
        if row is None or len(row.text.encode("utf-8")) > max_bytes or late():
            return None
        text, row_id = row.text, row.id
        taken = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENT, sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            return None
    return row_id, text


async def give_back(sessions: Sessions, row_id: int) -> None:
    """A row taken for a passive reply that could not go after all: the outbox sends it."""
    async with sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(status=OutboxStatus.PENDING, sent_at=None)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class StaffCard:
    """An active staff member as a channel shows them (the console names who gets each message)."""

    id: str
    name: str
    role: str


async def active_staff(sessions: Sessions, staff_id: str | None = None) -> list[StaffCard]:
    """The active staff (by role, then id), or the one with ``staff_id`` if active."""
    query = select(Staff).where(Staff.active.is_(True)).order_by(Staff.role, Staff.id)
    if staff_id is not None:
        query = query.where(Staff.id == staff_id)
    async with sessions() as session:
        rows = (await session.scalars(query)).all()
    return [StaffCard(s.id, s.name, s.role) for s in rows]


def serialises_writes(database_url: str) -> bool:
    """Whether the database takes one writer at a time (SQLite): a channel then queues its turns in
    the process rather than in the database's busy loop."""
    return is_sqlite(database_url)
