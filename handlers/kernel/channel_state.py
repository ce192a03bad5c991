"""The WeChat channel's own rows (``storage/wechat_models.py``), read and written for it by the kernel so
that the channel only translates: what we know of each user (the customer-service window, position,
following), their subscription-message answers, and the record of messages no allowed path could
deliver. Plain values in, plain values (``WeChatUserState``, ``Unreached``) out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.outbox import OutboxItem
from handlers.kernel.reachability import set_unreachable
from handlers.kernel.upserts import insert_ignore, upsert
from storage.models import ResidentIdentity
from storage.wechat_models import WeChatSubscription, WeChatUnreached, WeChatUser

Sessions = async_sessionmaker[AsyncSession]
MESSAGE_WINDOW = timedelta(hours=48)


@dataclass(frozen=True)
class WeChatUserState:
    """What the channel knows about one openid (a ``wechat_users`` row's values)."""

    last_inbound_at: datetime | None = None
    window_kind: str = "message"  # "message" (48 h, 5 messages) or "event" (1 minute, 3 messages)
    cs_sent: int = 0
    window_closed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_label: str | None = None
    located_at: datetime | None = None

    @classmethod
    def of(cls, row: WeChatUser) -> WeChatUserState:
        return cls(
            last_inbound_at=row.last_inbound_at,
            window_kind=row.window_kind,
            cs_sent=row.cs_sent,
            window_closed_at=row.window_closed_at,
            unsubscribed_at=row.unsubscribed_at,
            latitude=row.latitude,
            longitude=row.longitude,
            location_label=row.location_label,
            located_at=row.located_at,
        )


@dataclass(frozen=True)
class Position:
    latitude: float | None
    longitude: float | None
    label: str | None


@dataclass(frozen=True)
class Unreached:
    """A message no allowed path could deliver (``outreach-bot wechat unreached``)."""

    at: datetime
    channel: str
    openid: str
    case_id: int | None
    kind: str
    reason: str
    text: str


async def user_state(
    sessions: Sessions, channel: str, openid: str
) -> tuple[WeChatUserState | None, datetime | None]:
    """The user's state, and when the core last heard from them (their resident identity)."""
    async with sessions() as session:
        user = await session.get(WeChatUser, (channel, openid))
        resident = await session.get(ResidentIdentity, (channel, openid))
    state = WeChatUserState.of(user) if user is not None else None
    return state, resident.last_inbound_at if resident is not None else None


async def _ensure(session: AsyncSession, channel: str, openid: str) -> None:
    values = {"channel": channel, "openid": openid, "cs_sent": 0}
    await session.execute(insert_ignore(session, WeChatUser, values))


async def _set(sessions: Sessions, channel: str, openid: str, values: dict[str, Any]) -> None:
    async with sessions.begin() as session:
        await _ensure(session, channel, openid)
        await session.execute(
            update(WeChatUser)
            .where(WeChatUser.channel == channel, WeChatUser.openid == openid)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def window_closed(sessions: Sessions, channel: str, openid: str, now: datetime) -> None:
    """WeChat said the customer-service window is closed (45015)."""
    await _set(sessions, channel, openid, {"window_closed_at": now})


async def quota_spent(sessions: Sessions, channel: str, openid: str, quota: int) -> None:
    """WeChat said the window's message quota is spent (45047)."""
    await _set(sessions, channel, openid, {"cs_sent": quota})


async def unsubscribed(sessions: Sessions, channel: str, openid: str, now: datetime) -> None:
    """WeChat said the user does not follow the account (43004)."""
    await _set(sessions, channel, openid, {"unsubscribed_at": now})


async def count_cs_message(sessions: Sessions, channel: str, openid: str) -> None:
    """One more customer-service message went out in the user's window."""
    await _set(sessions, channel, openid, {"cs_sent": WeChatUser.cs_sent + 1})


async def touch(
    sessions: Sessions,
    channel: str,
    openid: str,
    now: datetime,
    *,
    window: str | None,
    position: Position | None = None,
    subscribed: bool | None = None,
) -> WeChatUserState:
    """Record what an inbound tells us about the user: a message or event opens a window (an event
    does not shorten an open message window), a position, following (which is also whether the
    account can be reached)."""
    async with sessions.begin() as session:
        await _ensure(session, channel, openid)
        user = await session.get_one(WeChatUser, (channel, openid))
        message_open = (
            user.last_inbound_at is not None
            and user.window_kind == "message"
            and now - user.last_inbound_at < MESSAGE_WINDOW
            and (user.window_closed_at is None or user.window_closed_at < user.last_inbound_at)
        )
        if window == "message" or (window == "event" and not message_open):
            user.last_inbound_at = now
            user.window_kind = window
            user.cs_sent = 0
        if position is not None and position.latitude is not None and position.longitude is not None:
            user.latitude, user.longitude = position.latitude, position.longitude
            user.location_label = position.label
            user.located_at = now
        if subscribed is not None:
            user.unsubscribed_at = None if subscribed else now
            await set_unreachable(session, channel, openid, None if subscribed else now)
        await session.flush()
        return WeChatUserState.of(user)


async def subscription(sessions: Sessions, openid: str, template_id: str) -> str | None:
    """The user's answer to the subscription popup for a template ("accept" / "reject"), if any."""
    async with sessions() as session:
        return await session.scalar(
            select(WeChatSubscription.status).where(
                WeChatSubscription.openid == openid, WeChatSubscription.template_id == template_id
            )
        )


async def record_subscription(
    sessions: Sessions, openid: str, template_id: str, status: str, now: datetime
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            upsert(
                session,
                WeChatSubscription,
                {"openid": openid, "template_id": template_id, "status": status, "updated_at": now},
                {"status": status, "updated_at": now},
            )
        )


async def record_unreached(
    sessions: Sessions, channel: str, item: OutboxItem, reason: str, now: datetime
) -> None:
    """A message no allowed path could deliver, for the admins."""
    async with sessions.begin() as session:
        session.add(
            WeChatUnreached(
                at=now,
                channel=channel,
                openid=item.recipient,
                outbox_id=item.id,
                case_id=item.case_id,
                kind=item.kind,
                reason=reason[:64],
                text=item.text,
            )
        )


async def unreached(sessions: Sessions, limit: int) -> list[Unreached]:
    """The latest undeliverable messages, newest first."""
    async with sessions() as session:
        rows = (
            await session.scalars(select(WeChatUnreached).order_by(WeChatUnreached.id.desc()).limit(limit))
        ).all()
    return [Unreached(r.at, r.channel, r.openid, r.case_id, r.kind, r.reason, r.text) for r in rows]


async def unreached_in(database_url: str, limit: int) -> list[Unreached]:
    """``unreached`` for a command: the database at ``database_url``, upgraded first."""
    from storage.migrate import database  # Alembic is loaded only by the commands that need it

    async with database(database_url) as db:
        return await unreached(db.sessions, limit)
