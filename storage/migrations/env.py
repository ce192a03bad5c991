"""Alembic environment: runs on the connection the application hands over, or on OUTREACH_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import handlers.broadcasts.models
import handlers.cases.classify_models
import handlers.reminders.models
import storage.attempt_models
import storage.wechat_models  # noqa: F401
from storage.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    # Alembic's own command line (developers): the URL from the environment, as the app reads it. The
    # storage layer reads no app settings (import contract), so a .env file is not consulted here.
    import os

    from storage import DEFAULT_DATABASE_URL
    from storage.database import create_engine

    engine = create_engine(os.environ.get("OUTREACH_DATABASE_URL", DEFAULT_DATABASE_URL))
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")

given = context.config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    asyncio.run(run_from_settings())
