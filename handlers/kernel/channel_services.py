"""The kernel services channel adapters call, so that they only translate: the rows they need written
or read (the inbound log of a message the core does not handle, an outbox row, whether an account can
be reached, a case's state for a button) are written and read here, once for every channel.

An adapter reaches them with the ``sessions`` of its ``AdapterContext`` (``handlers.kernel.channel_ports``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox import Outbound, enqueue
from storage.models import OPEN_STATUSES as OPEN_STATUSES  # re-exported for channels' buttons
from storage.models import (
    Case,
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    ResidentIdentity,
    Staff,
    StaffIdentity,
)

CaseState = tuple[str, str | None] | None  # (status, assignee) of a case; None when there is none

Sessions = async_sessionmaker[AsyncSession]


async def case_state(sessions: Sessions, number: int | None) -> CaseState:
    """A case's status and assignee (to tell whether a button press moved it on)."""
    if number is None:
        return None
    async with sessions() as session:
        row = (await session.execute(select(Case.status, Case.assignee_id).where(Case.id == number))).first()
    return (str(row[0]), row[1]) if row is not None else None


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


async def sent_row(sessions: Sessions, row_id: int, channel: str, recipient: str) -> OutboxMessage | None:
    """An outbox row, detached, if it went to ``recipient`` on ``channel`` (the message a card or a
    button was on)."""
    async with sessions() as session:
        row = await session.get(OutboxMessage, row_id)
        if row is None or row.channel != channel or row.recipient != recipient:
            return None
        session.expunge(row)
        return row


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


# -- reachability: one account that blocked the bot, left or unfollowed -------------------------------


async def is_unreachable(session: AsyncSession, channel: str, external_id: str) -> bool:
    """Whether the account (a resident's or a staff member's) is marked as not reachable."""
    for model in (ResidentIdentity, StaffIdentity):
        since = await session.scalar(
            select(model.unreachable_since).where(model.channel == channel, model.external_id == external_id)
        )
        if since is not None:
            return True
    return False


async def set_unreachable(
    session: AsyncSession, channel: str, external_id: str, since: datetime | None
) -> None:
    """Mark the account as not reachable since ``since`` (None: reachable again)."""
    for model in (ResidentIdentity, StaffIdentity):
        await session.execute(
            update(model)
            .where(model.channel == channel, model.external_id == external_id)
            .values(unreachable_since=since)
            .execution_options(synchronize_session=False)
        )


async def reachable_again(sessions: Sessions, channel: str, external_id: str) -> None:
    """Someone who writes to the bot can be written to again (they had blocked it before)."""
    async with sessions() as session:
        flagged = await is_unreachable(session, channel, external_id)
    if flagged:
        async with sessions.begin() as session:
            await set_unreachable(session, channel, external_id, None)
