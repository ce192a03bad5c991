"""Throw-away PostgreSQL databases for tests and benchmarks, on the server at OUTREACH_TEST_PG_URL
(default: 127.0.0.1:5432, database `test`, which is never written to itself)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _connect(url: str) -> object:
    import asyncpg

    u = make_url(url)
    return await asyncio.wait_for(
        asyncpg.connect(host=u.host, port=u.port, user=u.username, password=u.password, database=u.database),
        timeout=5,
    )


async def postgres_problem(url: str = PG_URL) -> str | None:
    """Why the PostgreSQL server cannot be used, or None when it can."""
    try:
        conn = await _connect(url)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()  # type: ignore[attr-defined]
    return None


@asynccontextmanager
async def scratch_postgres(
    prefix: str = "outreach", url: str = PG_URL, keep: bool = False
) -> AsyncIterator[str]:
    """A new empty database for the duration of the block; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await _connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"  (kept database {name})")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]
