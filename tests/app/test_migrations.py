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
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

import storage
from bench.support.scratch_db import scratch_postgres
from storage.database import create_engine
from storage.migrate import alembic_config, downgrade, upgrade
from storage.models import Base
from tests.support.db import database_of, require_postgres


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


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_migrated_database_matches_the_models(kind: str, tmp_path: Any) -> None:
    async with database_of(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, from_models=False)  # every migration, not the new database's shortcut
            all_models()
            async with engine.connect() as connection:
                assert await connection.run_sync(differences) == []
        finally:
            await engine.dispose()


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


# A new database is created from the models and stamped (storage.migrate.create_from_models) rather
# than migrated: it must be the very schema the migrations build, down to constraint and index names
# (a later migration may alter or drop them by name), and take later migrations the same way.


def schema(connection: Any) -> dict[str, Any]:
    """Everything the database says about its tables, normalised for comparison."""
    from sqlalchemy import inspect, text

    inspector = inspect(connection)

    def plain(value: Any) -> str:  # reflected SQL fragments (partial index conditions) by their text
        if isinstance(value, dict):
            return repr({k: plain(v) for k, v in sorted(value.items())})
        if isinstance(value, list | tuple):
            return repr([plain(v) for v in value])
        return str(value) if hasattr(value, "compile") else repr(value)

    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = []
        for column in inspector.get_columns(table):
            described = {k: v for k, v in column.items() if k != "type"}
            described["type"] = column["type"].compile(dialect=connection.dialect)
            columns.append(plain(described))
        out[table] = {
            # by name: a migration adds a column at the end, the models may declare it in the middle
            "columns": sorted(columns),
            "primary key": plain(inspector.get_pk_constraint(table)),
            "foreign keys": sorted(map(plain, inspector.get_foreign_keys(table))),
            "indexes": sorted(map(plain, inspector.get_indexes(table))),
            "unique": sorted(map(plain, inspector.get_unique_constraints(table))),
            "checks": sorted(map(plain, inspector.get_check_constraints(table))),
        }
    out["alembic_version"]["rows"] = sorted(
        row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
    )
    return out


async def schema_of(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(schema)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_new_database_made_from_the_models_is_the_migrated_one(kind: str, tmp_path: Any) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        database_of(kind, tmp_path / "a") as migrated_url,
        database_of(kind, tmp_path / "b") as new_url,
    ):
        migrated, new = create_engine(migrated_url), create_engine(new_url)
        try:
            await upgrade(migrated, from_models=False)
            await upgrade(new)
            migrated_schema, new_schema = await schema_of(migrated), await schema_of(new)
            assert set(new_schema) == set(migrated_schema)
            for table in migrated_schema:
                assert new_schema[table] == migrated_schema[table], table
            heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
            assert set(new_schema["alembic_version"]["rows"]) == heads

            # A later release brings a migration: both databases take it and stay the same.
            scripts = later_migration(tmp_path / "migrations", sorted(heads))
            for engine in (migrated, new):
                async with engine.begin() as connection:
                    await connection.run_sync(lambda c: upgrade_with(c, scripts))
            migrated_schema, new_schema = await schema_of(migrated), await schema_of(new)
            assert new_schema == migrated_schema
            assert new_schema["alembic_version"]["rows"] == ["9901"]
            assert any("'later_note'" in column for column in new_schema["cases"]["columns"])
        finally:
            await migrated.dispose()
            await new.dispose()


LATER = """
import sqlalchemy as sa
from alembic import op

revision = "9901"
down_revision = {heads!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Alters (on SQLite: copies) tables with foreign keys, a self-reference and partial indexes, and
    # drops an index by the name the migrations gave it.
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("later_note", sa.String(50), nullable=True))
        batch.drop_index("ix_cases_next_alarm_at")
        batch.create_index("ix_cases_later_note", ["later_note", "next_alarm_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("later_flag", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    raise NotImplementedError
"""


def later_migration(folder: Any, heads: list[str]) -> Any:
    """A copy of the migrations with one more revision on top of today's heads."""
    import shutil

    from storage.migrate import MIGRATIONS

    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9901_later.py").write_text(LATER.format(heads=tuple(heads)), encoding="utf-8")
    return folder


def upgrade_with(connection: Any, scripts: Any) -> None:
    from alembic import command

    config = alembic_config(connection)
    config.set_main_option("script_location", str(scripts))
    command.upgrade(config, "heads")
