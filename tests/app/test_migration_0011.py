"""0011: the case events' index by case carries action, actor_type and at on PostgreSQL (the ratings
of a period's cases are read from the index alone); a database at 0010 with events upgrades in place
and downgrades back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text

from storage.database import create_engine
from storage.migrate import downgrade, upgrade
from tests.support.db import database_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)

ROWS_0010 = [
    "INSERT INTO community (id, code, aliases, active, name, timezone, loaded_at, source) VALUES"
    " (1, 'HPL', '[]', :yes, '和平里社区', 'Asia/Shanghai', :now, '{}')",
    "INSERT INTO cases (id, community_id, number, status, categories, confidence, text, in_triage, channel,"
    " created_at, updated_at) VALUES"
    " (7, 1, 7, 'confirmed', '[]', 0.9, '3号楼小广告', :no, 'telegram', :now, :now)",
    "INSERT INTO case_events (id, case_id, at, actor_type, action, data) VALUES"
    " (1, 7, :now, 'staff', 'resolved', '{}'), (2, 7, :now, 'resident', 'confirmed', '{}')",
]


async def indexes(engine: Any) -> dict[str, dict[str, Any]]:
    async with engine.connect() as connection:
        found = await connection.run_sync(lambda c: inspect(c).get_indexes("case_events"))
    return {i["name"]: i for i in found}


async def definition(engine: Any, name: str) -> str:
    async with engine.connect() as connection:
        return str(
            await connection.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name})
        )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_case_events_index_carries_the_rating_columns(kind: str, tmp_path: Any) -> None:
    async with database_of(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, "0010", from_models=False)
            async with engine.begin() as connection:
                yes, no = (1, 0) if connection.dialect.name == "sqlite" else (True, False)
                for statement in ROWS_0010:
                    params = {"now": NOW, "yes": yes, "no": no}
                    await connection.execute(
                        text(statement), {k: v for k, v in params.items() if f":{k}" in statement}
                    )
            assert "ix_case_events_case_id" in await indexes(engine)

            await upgrade(engine, from_models=False)
            found = await indexes(engine)
            assert "ix_case_events_case_id" not in found
            assert found["ix_case_events_case"]["column_names"] == ["case_id"]
            if kind == "postgres":
                assert "INCLUDE (action, actor_type, at)" in await definition(engine, "ix_case_events_case")
            async with engine.connect() as connection:
                kept = (
                    await connection.execute(text("SELECT id, action FROM case_events ORDER BY id"))
                ).all()
            assert [tuple(r) for r in kept] == [(1, "resolved"), (2, "confirmed")]

            await downgrade(engine, "0010")
            found = await indexes(engine)
            assert "ix_case_events_case" not in found
            assert found["ix_case_events_case_id"]["column_names"] == ["case_id"]
        finally:
            await engine.dispose()
