"""The outbox: every outbound message is a row, written with the change it reports and sent after commit.

A crash between storing a case and notifying the worker therefore loses nothing: the row is still
pending (or its claim lapses) and the next drain sends it. Claims use ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so several processes share the work; SQLite serialises writers anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Button:
    """An action offered with a message: a button on Telegram, a keyword to reply on WeChat."""

    label: str
    action: str  # e.g. "accept:12"; channels encode it in their own way


@dataclass(frozen=True)
class Outbound:
    channel: str
    recipient: str
    text: str
    kind: str = "reply"
    case_id: int | None = None
    buttons: Sequence[Button] = field(default_factory=tuple)
    photo: str | None = None
    dedup_key: str | None = None  # unique: a message that must never be sent twice (digest, reminder …)


class DeliveryError(Exception):
    """A send that failed. ``retry_after`` (seconds) reschedules; ``permanent`` gives up at once."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


class Sender(Protocol):
    channel: str

    async def send(self, message: OutboxMessage) -> None: ...


def enqueue(session: AsyncSession, out: Outbound, now: datetime | None = None) -> OutboxMessage:
    payload: dict[str, Any] = {}
    if out.buttons:
        payload["buttons"] = [{"label": b.label, "action": b.action} for b in out.buttons]
    if out.photo:
        payload["photo"] = out.photo
    row = OutboxMessage(
        channel=out.channel,
        recipient=out.recipient,
        kind=out.kind,
        text=out.text,
        payload=payload,
        case_id=out.case_id,
        dedup_key=out.dedup_key,
        status=OutboxStatus.PENDING,
        not_before=now or utcnow(),
    )
    session.add(row)
    return row


async def claim(
    sessions: async_sessionmaker[AsyncSession], channel: str, now: datetime, limit: int = 50
) -> list[OutboxMessage]:
    """Take up to ``limit`` due messages of one channel for sending: highest priority first (replies
    before broadcasts), then oldest first."""
    due = or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now),
        and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_until < now),
    )
    async with sessions.begin() as session:
        ids = (
            await session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.channel == channel, due)
                .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not ids:
            return []
        rows = (
            await session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    status=OutboxStatus.SENDING,
                    claimed_until=now + LEASE,
                    attempts=OutboxMessage.attempts + 1,
                )
                .returning(OutboxMessage)
            )
        ).all()
    return sorted(rows, key=lambda r: (-r.priority, r.id))


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    message: OutboxMessage,
    error: DeliveryError | None,
    now: datetime,
) -> None:
    values: dict[str, Any]
    if error is None:
        values = {"status": OutboxStatus.SENT, "sent_at": now, "claimed_until": None, "last_error": None}
    elif error.permanent or (error.retry_after is None and message.attempts >= MAX_ATTEMPTS):
        values = {"status": OutboxStatus.FAILED, "claimed_until": None, "last_error": error.reason[:500]}
    else:
        delay = error.retry_after if error.retry_after is not None else min(2**message.attempts, 600)
        values = {
            "status": OutboxStatus.PENDING,
            "not_before": now + timedelta(seconds=delay),
            "claimed_until": None,
            "last_error": error.reason[:500],
        }
    async with sessions.begin() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values))


async def drain(
    sessions: async_sessionmaker[AsyncSession],
    sender: Sender,
    clock: Callable[[], datetime] = utcnow,
    limit: int = 50,
) -> int:
    """Send what is due on the sender's channel once; returns how many were sent."""
    sent = 0
    for message in await claim(sessions, sender.channel, clock(), limit):
        error: DeliveryError | None = None
        try:
            await sender.send(message)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # one bad message must not stop the others
            log.exception("outbox message %s failed", message.id)
            error = DeliveryError(type(exc).__name__)
        await settle(sessions, message, error, clock())
        sent += error is None
    return sent
