"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (override with OUTREACH_TEST_PG_URL). Without it the
PostgreSQL half is skipped with a reason, except in CI (CI=true), where it must run and a missing
server is a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.community import Community, load_community
from handlers.community_store import sync_community
from handlers.context import Services
from handlers.conversation import Conversation
from handlers.inbound import Inbound
from handlers.outbox import drain
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Base, OutboxMessage
from tests.scratch_db import database_of


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with database_of(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # Integer keys without AUTOINCREMENT restart at 1 once the table is empty.
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    await wipe(engine)
    return session_factory(engine)


@pytest.fixture(scope="session")
def sample() -> Community:
    return load_community(None)


class Clock:
    """A clock tests can move: starts on a Monday morning in Shanghai."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 Asia/Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Delivered:
    channel: str
    recipient: str
    text: str
    payload: dict[str, object]


@dataclass
class RecordingSender:
    """A stand-in for a chat platform: keeps what would have been delivered."""

    channel: str
    delivered: list[Delivered] = field(default_factory=list)

    async def send(self, message: OutboxMessage) -> None:
        self.delivered.append(
            Delivered(message.channel, message.recipient, message.text, dict(message.payload))
        )


@dataclass
class Chat:
    """Drive the real conversation core as the console does: send a message, collect what went out."""

    services: Services
    conversation: Conversation
    sender: RecordingSender
    clock: Clock

    async def send(self, who: str, text: str | None = None, **kwargs: object) -> list[Delivered]:
        await self.conversation.handle(Inbound(channel="console", sender=who, text=text, **kwargs))  # type: ignore[arg-type]
        return await self.flush()

    async def flush(self) -> list[Delivered]:
        before = len(self.sender.delivered)
        while await drain(self.services.sessions, self.sender, self.clock):
            pass
        return self.sender.delivered[before:]

    @staticmethod
    def to(messages: list[Delivered], who: str) -> list[str]:
        return [m.text for m in messages if m.recipient == who]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def services(sessions: async_sessionmaker[AsyncSession], sample: Community, clock: Clock) -> Services:
    async with sessions.begin() as session:
        await sync_community(session, sample)
    return Services(sessions=sessions, community=sample, channels=frozenset({"console"}), clock=clock)


@pytest.fixture
def chat(services: Services, clock: Clock) -> Chat:
    return Chat(services, Conversation(services), RecordingSender("console"), clock)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    def write(content: str) -> Path:
        path = tmp_path / f"community-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(content, encoding="utf-8")
        return path

    return write
