"""The operator's view of outbox rows that were given up: list them (masked) and put them back.

A row fails for good when the platform refused it (400, a user who blocked the bot), when its retry
budget ran out during an outage (``unreached after N h: …``), or when a crash left it uncertain. Rows
deliberately not sent (a cancelled broadcast, a resident who opted out) are not failures and are
neither listed nor retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox import UNCERTAIN
from handlers.kernel.privacy import mask_log, mask_text
from storage.models import OutboxMessage, OutboxStatus

# Failure reasons written for rows that were meant not to go (handlers/broadcasts/service.py).
NOT_FAILURES = ("cancelled", "opted_out")
PREVIEW = 30  # characters of the message shown, masked


@dataclass(frozen=True)
class FailedRow:
    id: int
    channel: str
    recipient: str
    kind: str
    created_at: datetime
    attempts: int
    reason: str
    preview: str


def mask_recipient(recipient: str) -> str:
    """Enough of a chat id or openid to tell two apart, not enough to write to it."""
    if len(recipient) <= 6:
        return recipient[:2] + "…"
    return f"{recipient[:4]}…{recipient[-2:]}"


def _failed() -> tuple[ColumnElement[bool], ...]:
    return (
        OutboxMessage.status == OutboxStatus.FAILED,
        or_(OutboxMessage.last_error.is_(None), OutboxMessage.last_error.not_in(NOT_FAILURES)),
    )


async def failed_rows(sessions: async_sessionmaker[AsyncSession], limit: int = 200) -> list[FailedRow]:
    """The newest failed rows, masked for a terminal: no full text, no phone or ID number, no secret."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(*_failed()).order_by(OutboxMessage.id.desc()).limit(limit)
            )
        ).all()
    return [
        FailedRow(
            id=r.id,
            channel=r.channel,
            recipient=mask_recipient(r.recipient),
            kind=r.kind,
            created_at=r.created_at,
            attempts=r.attempts,
            reason=mask_log(r.last_error or "-"),
            preview=mask_text(" ".join(r.text.split()))[:PREVIEW],
        )
        for r in rows
    ]


async def retry(
    sessions: async_sessionmaker[AsyncSession], now: datetime, ids: Sequence[int] | None = None
) -> list[int]:
    """Put failed rows back in the queue with a fresh retry budget: the given ids, or (``ids`` None)
    every failed row except uncertain ones, which may have reached their recipient already (a
    broadcast is never sent twice unless an operator names it). Returns the ids queued again."""
    where = [*_failed()]
    if ids is None:
        where.append(or_(OutboxMessage.last_error.is_(None), OutboxMessage.last_error != UNCERTAIN))
    else:
        where.append(OutboxMessage.id.in_(list(ids)))
    async with sessions.begin() as session:
        queued = (
            await session.scalars(
                update(OutboxMessage)
                .where(*where)
                .values(
                    status=OutboxStatus.PENDING,
                    not_before=now,
                    attempts=0,
                    give_up_at=None,
                    claimed_until=None,
                    claimed_by=None,
                    dispatched_at=None,
                )
                .returning(OutboxMessage.id)
            )
        ).all()
    return sorted(queued)
