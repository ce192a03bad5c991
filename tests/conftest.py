"""Shared fixtures: every database test runs on SQLite and on PostgreSQL (the matrix is
``tests/support/db.py``; PostgreSQL is the server at 127.0.0.1:5432, override with
OUTREACH_TEST_PG_URL; without it the PostgreSQL half is skipped with a reason, except in CI (CI=true),
where it must run and a missing server is a failure).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.community.model import Community, load_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from tests.support.chat import Chat, Clock, RecordingSender
from tests.support.db import BACKENDS, database_of, wipe

# The modules that take longest (real `serve` processes, platform rate limits, many CLI runs), longest
# first. Each module stays on one xdist worker (--dist loadscope) and modules are handed out in
# collection order: started last, one of these would leave the other worker idle at the end.
LONGEST_FIRST = (
    "test_broadcast_platforms.py",
    "test_telegram.py",
    "test_wechat_security.py",
    "test_cli.py",
    "test_wecom.py",
    "test_wechat.py",
    "test_telegram_resilience.py",
    "test_broadcasts.py",
    "test_outbox.py",
    "test_stats.py",
)


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by database
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module keeps its own order


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" or "postgres": each test that needs a database, directly or through a server fixture,
    runs once on each."""
    return str(request.param)


@pytest.fixture(scope="session")
async def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with database_of(backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    await wipe(engine)
    return session_factory(engine)


@pytest.fixture(scope="session")
def sample() -> Community:
    return load_community(None)


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
    return Chat(services, conversation(services), RecordingSender("console"), clock)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    def write(content: str) -> Path:
        path = tmp_path / f"community-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(content, encoding="utf-8")
        return path

    return write
