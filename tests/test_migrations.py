"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL, and
can be rolled back and applied again."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

import storage
from bench.support.scratch_db import scratch_postgres
from storage.database import create_engine
from storage.migrate import downgrade, upgrade
from storage.models import Base
from tests.support.db import require_postgres


def all_models() -> None:
    for module in pkgutil.iter_modules(storage.__path__):
        if module.name.endswith("models"):
            importlib.import_module(f"storage.{module.name}")


def differences(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return [
        d
        for d in compare_metadata(context, Base.metadata)
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")
    ]


async def test_migrated_database_matches_the_models(engine: AsyncEngine) -> None:
    all_models()
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_downgrade_to_base_and_upgrade_again(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}")
    try:
        await upgrade(engine)
        await downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: c.dialect.get_table_names(c))
        assert set(tables) <= {"alembic_version"}
        await upgrade(engine)
        all_models()
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_processes_starting_together_migrate_once() -> None:
    # `serve --workers N`, or several hosts started at once, on a new PostgreSQL database.
    await require_postgres()
    async with scratch_postgres("outreach_migrate") as url:
        engines = [create_engine(url) for _ in range(3)]
        try:
            # (without the lock they deadlock on each other's DDL, or fail on a table that exists)
            await asyncio.wait_for(asyncio.gather(*(upgrade(e) for e in engines)), 60)
            all_models()
            async with engines[0].connect() as connection:
                assert await connection.run_sync(differences) == []
        finally:
            for e in engines:
                await e.dispose()
