"""The database matrix: every database test runs on SQLite and on PostgreSQL.

``BACKENDS`` is the one parameter list; ``tests/conftest.py`` turns it into the session fixture
``backend``, which ``db_url`` and every module fixture that starts a server with a database of its own
depend on. PostgreSQL is the server at OUTREACH_TEST_PG_URL (default 127.0.0.1:5432): without it
the PostgreSQL half skips with the reason, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.support.scratch_db import IN_CI, PG_URL, postgres_problem, scratch_postgres
from storage.model_registry import load_models

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def skip_or_fail(problem: str) -> None:
    """Without PostgreSQL, its tests skip with the reason locally and fail in CI (CI=true)."""
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {problem}")
    pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({problem})")


async def require_postgres() -> None:
    problem = await postgres_problem()
    if problem is not None:
        skip_or_fail(problem)


@asynccontextmanager
async def database_of(kind: str, folder: Path, prefix: str = "outreach_test") -> AsyncIterator[str]:
    """The URL of a fresh database of ``kind`` ("sqlite": a file in ``folder``; "postgres": a scratch
    database, or a skip with the reason, a failure in CI, when the server is unreachable)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'test.db'}"
        return
    await require_postgres()
    async with scratch_postgres(prefix) as url:
        yield url


async def wipe(engine: AsyncEngine) -> None:
    """Empty every table, so that each test starts from nothing on the session's database."""
    tables = load_models().sorted_tables  # every model module's tables (the features' too)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # Integer keys without AUTOINCREMENT restart at 1 once the table is empty.
            for table in reversed(tables):
                await conn.execute(table.delete())
