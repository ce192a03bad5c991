"""Bring a database to the newest schema with Alembic (used by the CLI, the server and the tests)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.database import create_engine, session_factory

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x5154_0001  # PostgreSQL advisory lock key held while migrating


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    """A command's way into the database: an engine at ``url``, upgraded to the newest schema, and
    disposed of when the command is done (the CLI's one copy of create → upgrade → dispose)."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        yield Database(engine, session_factory(engine))
    finally:
        await engine.dispose()


async def upgrade(engine: AsyncEngine, revision: str = "heads", *, from_models: bool = True) -> None:
    """Apply every pending revision. Features keep their tables on their own branches (one head each)
    until a merge revision joins them, so "heads", not "head".

    A brand-new database (no tables at all) is instead created from the models in one go and stamped
    at the heads: the same schema (``tests/app/test_migrations.py`` compares the two ways on SQLite and
    PostgreSQL, and a later migration applied to both), without running every migration or loading
    Alembic. ``from_models=False`` runs the migrations even then."""

    if revision == "heads" and await is_at_heads(engine):
        return  # the usual start: nothing to do, and Alembic (a quarter of a second to import) not loaded

    def run(connection: Connection) -> None:
        if from_models and revision == "heads" and not inspect(connection).get_table_names():
            create_from_models(connection)
            return
        from alembic import command

        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes starting together on one database: one migrates, the others wait for
            # it and then find nothing to do (SQLite's BEGIN IMMEDIATE already serialises them).
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(run)


def all_models() -> MetaData:
    """The metadata of every table: each ``storage/*models.py`` module adds its own to the one Base."""
    import storage

    for module in pkgutil.iter_modules(storage.__path__):
        if module.name.endswith("models"):
            importlib.import_module(f"storage.{module.name}")
    from storage.models import Base

    return Base.metadata


def create_from_models(connection: Connection) -> None:
    """Create every table of an empty database and record the heads in ``alembic_version`` as
    ``alembic stamp heads`` would (its table: one ``version_num`` VARCHAR(32) key, a row per head)."""
    heads = script_heads()
    if not heads:
        raise RuntimeError(f"no migration heads found in {MIGRATIONS / 'versions'}")
    all_models().create_all(connection)
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert(), [{"version_num": head} for head in sorted(heads)])


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    def run(connection: Connection) -> None:
        from alembic import command

        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=]*=\s*(.+)$", re.MULTILINE)


@cache
def script_heads() -> frozenset[str]:
    """The heads of the migration scripts, read from their ``revision`` / ``down_revision`` lines
    without importing Alembic (a revision whose id is referenced by no other's down_revision)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _ASSIGNMENT.finditer(script.read_text("utf-8")))
        if "revision" not in found:
            continue
        revisions.update(re.findall(r"[\"']([^\"']+)[\"']", found["revision"])[:1])
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", found.get("down_revision", "")))
    return frozenset(revisions - parents)


async def is_at_heads(engine: AsyncEngine) -> bool:
    """True when the database's ``alembic_version`` rows are exactly the scripts' heads: one small
    query instead of Alembic's full upgrade machinery. Any doubt (no table yet, an odd script) says
    False, and the real upgrade runs."""
    heads = script_heads()
    if not heads:
        return False
    from sqlalchemy.exc import DBAPIError

    async with engine.connect() as connection:  # a connection error is the caller's, as before
        try:
            rows: Any = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:  # no alembic_version table: a new database
            await connection.rollback()
            return False
        current = frozenset(row[0] for row in rows)
    return current == heads
