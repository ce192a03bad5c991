"""The access tokens a channel's platform client shares between processes (``wechat_tokens``): one row
per app, whose refresh lease is a conditional UPDATE (one winner on both SQLite and PostgreSQL, where
it takes the row lock), so no transaction stays open over HTTP. The channel's client asks for the
token and refreshes it through this store (or its Redis twin in the channel, ``RedisTokenStore``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kernel.upserts import insert_ignore
from storage.wechat_models import WeChatToken

REFRESH_AHEAD = timedelta(minutes=5)  # refresh when less than this is left
LEASE = timedelta(seconds=20)  # how long one process may take to refresh


@dataclass(frozen=True)
class CachedToken:
    token: str | None
    expires_at: datetime | None
    checked_at: datetime | None

    def fresh(self, now: datetime) -> bool:
        return (
            self.token is not None and self.expires_at is not None and self.expires_at - now > REFRESH_AHEAD
        )

    def usable(self, now: datetime) -> bool:
        return (
            self.token is not None
            and self.expires_at is not None
            and self.expires_at - now > timedelta(seconds=10)
        )


class DatabaseTokenStore:
    """The token row in ``wechat_tokens``; the refresh lease is a conditional UPDATE (one winner on both
    SQLite and PostgreSQL, where it takes the row lock), so no transaction stays open over HTTP."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, key: str) -> CachedToken | None:
        async with self.sessions() as session:
            row = await session.get(WeChatToken, key)
            if row is None:
                return None
            return CachedToken(row.access_token, row.expires_at, row.checked_at)

    async def try_lock(self, key: str, now: datetime) -> bool:
        async with self.sessions.begin() as session:
            await session.execute(insert_ignore(session, WeChatToken, {"key": key}))
            result = await session.execute(
                update(WeChatToken)
                .where(
                    WeChatToken.key == key,
                    or_(WeChatToken.refreshing_until.is_(None), WeChatToken.refreshing_until < now),
                )
                .values(refreshing_until=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    async def put(self, key: str, token: str, expires_at: datetime, now: datetime) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(WeChatToken)
                .where(WeChatToken.key == key)
                .values(access_token=token, expires_at=expires_at, checked_at=now, refreshing_until=None)
                .execution_options(synchronize_session=False)
            )

    async def release(self, key: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(WeChatToken)
                .where(WeChatToken.key == key)
                .values(refreshing_until=None)
                .execution_options(synchronize_session=False)
            )

    async def close(self) -> None:
        return None


async def shared_secret(session: AsyncSession, key: str) -> str:
    """A random secret made once per deployment and kept in the same table as the tokens (its row
    ``key``), for what must be signed alike by every process when no secret is configured (the QR
    scenes of the no-token demo). The first process to insert it wins; it is never logged."""
    import secrets

    await session.execute(
        insert_ignore(session, WeChatToken, {"key": key, "access_token": secrets.token_urlsafe(32)})
    )
    row = await session.get(WeChatToken, key, populate_existing=True)
    assert row is not None and row.access_token
    return row.access_token
