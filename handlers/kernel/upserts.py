"""Small SQL helpers that differ between SQLite and PostgreSQL (upserts), for the kernel services."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(session: AsyncSession, model: Any, values: dict[str, Any] | list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).values(values)


def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any] | list[dict[str, Any]]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (one row, or several in one statement)."""
    return _insert(session, model, values).on_conflict_do_nothing()


def upsert(session: AsyncSession, model: Any, values: dict[str, Any], update: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT (primary key) DO UPDATE SET ``update``."""
    statement = _insert(session, model, values)
    keys = [c.name for c in model.__table__.primary_key.columns]
    return statement.on_conflict_do_update(index_elements=keys, set_=update)
