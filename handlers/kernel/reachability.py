"""Whether an account can be reached, decided in one place for every channel.

A channel's sender only reports what the platform said: ``DeliveryError(outcome=BLOCKED)`` when the
person blocked the bot or left (Telegram's 403, WeCom's unknown member). ``delivering`` turns that into
the account's state (``unreachable_since`` on its resident or staff identity), and gives up later rows
to a marked account without a request until the person writes again (``reachable_again``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox import DeliveryError, OutboxItem
from handlers.kernel.ports import DeliveryOutcome, OutboxKind
from storage.models import ResidentIdentity, StaffIdentity

Sessions = async_sessionmaker[AsyncSession]

# A card update answers a click the member just made: never held back by an earlier mark.
_ALWAYS_TRIED = frozenset({OutboxKind.CARD_UPDATE.value})
GONE = "recipient unreachable (blocked the bot or left)"


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


async def mark(sessions: Sessions, channel: str, external_id: str, since: datetime | None) -> None:
    """``set_unreachable`` in its own transaction (a platform event: unfollowed, followed again)."""
    async with sessions.begin() as session:
        await set_unreachable(session, channel, external_id, since)


async def reachable_again(sessions: Sessions, channel: str, external_id: str) -> None:
    """Someone who writes to the bot can be written to again (they had blocked it before)."""
    async with sessions() as session:
        flagged = await is_unreachable(session, channel, external_id)
    if flagged:
        await mark(sessions, channel, external_id, None)


@asynccontextmanager
async def delivering(
    sessions: Sessions, channel: str, item: OutboxItem, clock: Callable[[], datetime]
) -> AsyncIterator[None]:
    """One delivery of ``item`` as the kernel sees it: a marked account is given up at once (BLOCKED,
    no request), and a BLOCKED outcome from the platform marks the account."""
    if item.kind not in _ALWAYS_TRIED:
        async with sessions() as session:
            if await is_unreachable(session, channel, item.recipient):
                raise DeliveryError(GONE, outcome=DeliveryOutcome.BLOCKED)
    try:
        yield
    except DeliveryError as error:
        if error.outcome == DeliveryOutcome.BLOCKED:
            await mark(sessions, channel, item.recipient, clock())
        raise
