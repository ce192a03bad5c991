"""0010: an existing single-community database upgrades in place (its data becomes one community, every
case keeps its number), takes a second community with the same grid codes, and downgrades back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from storage.database import create_engine
from storage.migrate import downgrade, upgrade
from tests.support.db import database_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)

ROWS_0009 = [
    "INSERT INTO community (id, name, timezone, loaded_at, source) VALUES"
    " (1, '幸福社区', 'Asia/Shanghai', :now, '{\"community\": {\"name\": \"幸福社区\"}}')",
    "INSERT INTO staff (id, name, role, active) VALUES ('zhang', '张伟', 'worker', :yes)",
    "INSERT INTO staff (id, name, role, active) VALUES ('li', '李娜', 'leader', :yes)",
    "INSERT INTO staff (id, name, role, active) VALUES ('gone', '离开', 'worker', :no)",
    "INSERT INTO staff_identities (channel, external_id, staff_id, source) VALUES"
    " ('telegram', '100001', 'zhang', 'config')",
    "INSERT INTO grids (code, name, leader_id, buildings, places, active) VALUES"
    " ('G1', '第一网格', 'li', '[\"1-6\"]', '[]', :yes)",
    "INSERT INTO grid_workers (grid_code, staff_id, categories, position) VALUES"
    " ('G1', 'zhang', '[\"poster\"]', 0)",
    "INSERT INTO categories (code, name, time_limit_hours, enabled) VALUES ('poster', '小广告', 8, :yes)",
    "INSERT INTO residents (id, display_name, created_at, blocked) VALUES (1, '小李', :now, :no)",
    "INSERT INTO resident_identities (channel, external_id, resident_id, created_at) VALUES"
    " ('telegram', '555', 1, :now)",
    "INSERT INTO cases (id, status, category_code, categories, confidence, text, grid_code, assignee_id,"
    " in_triage, reporter_id, channel, created_at, updated_at) VALUES"
    " (7, 'assigned', 'poster', '[]', 0.9, '3号楼小广告', 'G1', 'zhang', :no, 1, 'telegram', :now, :now)",
    "INSERT INTO case_events (id, case_id, at, actor_type, action, data) VALUES"
    " (1, 7, :now, 'resident', 'reported', '{}')",
    "INSERT INTO inbound_messages (id, channel, external_id, sender, received_at, case_id, status)"
    " VALUES (1, 'telegram', 'm1', '555', :now, 7, 'handled')",
]


async def run(engine: Any, statements: list[str]) -> None:
    async with engine.begin() as connection:
        yes, no = (1, 0) if connection.dialect.name == "sqlite" else (True, False)
        for statement in statements:
            params = {k: v for k, v in {"now": NOW, "yes": yes, "no": no}.items() if f":{k}" in statement}
            await connection.execute(text(statement), params)


async def rows(engine: Any, query: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(r) for r in (await connection.execute(text(query))).all()]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_single_community_database_becomes_one_community(kind: str, tmp_path: Any) -> None:
    async with database_of(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, "0009", from_models=False)
            await run(engine, ROWS_0009)
            await upgrade(engine, from_models=False)

            assert await rows(engine, "SELECT id, code, name FROM community") == [(1, "C1", "幸福社区")]
            assert await rows(engine, "SELECT name FROM street") == [("幸福社区",)]
            memberships = await rows(
                engine, "SELECT staff_id, community_id FROM staff_communities ORDER BY staff_id"
            )
            assert memberships == [("gone", 1), ("li", 1), ("zhang", 1)]
            assert await rows(engine, "SELECT community_id, code FROM grids") == [(1, "G1")]
            assert await rows(engine, "SELECT community_id, grid_code, staff_id FROM grid_workers") == [
                (1, "G1", "zhang")
            ]
            assert await rows(engine, "SELECT community_id, code FROM categories") == [(1, "poster")]
            assert await rows(engine, "SELECT id, community_id FROM residents") == [(1, 1)]
            assert await rows(engine, "SELECT id, community_id, number, grid_code FROM cases") == [
                (7, 1, 7, "G1")
            ]
            # nothing that refers to the copied or edited tables was lost
            assert await rows(engine, "SELECT case_id FROM case_events") == [(7,)]
            assert await rows(engine, "SELECT resident_id FROM resident_identities") == [(1,)]
            assert await rows(engine, "SELECT staff_id FROM staff_identities") == [("zhang",)]

            # a second community with its own G1 and poster category; its case 1 beside case 7
            await run(
                engine,
                [
                    "INSERT INTO community (id, code, aliases, active, name, timezone, loaded_at, source)"
                    " VALUES (2, 'JXY', '[]', :yes, '锦绣园', 'Asia/Shanghai', :now, '{}')",
                    "INSERT INTO grids (community_id, code, name, leader_id, buildings, places, active)"
                    " VALUES (2, 'G1', '锦绣一网格', 'li', '[\"1-6\"]', '[]', :yes)",
                    "INSERT INTO grid_workers (community_id, grid_code, staff_id, categories, position)"
                    " VALUES (2, 'G1', 'zhang', '[]', 0)",
                    "INSERT INTO categories (community_id, code, name, time_limit_hours, enabled)"
                    " VALUES (2, 'poster', '小广告', 8, :yes)",
                    "INSERT INTO cases (community_id, number, status, categories, confidence, text,"
                    " grid_code, in_triage, channel, created_at, updated_at) VALUES"
                    " (2, 1, 'new', '[]', 0, '锦绣园3号楼', 'G1', :no, 'telegram', :now, :now)",
                ],
            )
            with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError
                await run(
                    engine,
                    [
                        "INSERT INTO cases (community_id, number, status, categories, confidence, text,"
                        " in_triage, channel, created_at, updated_at) VALUES"
                        " (2, 1, 'new', '[]', 0, 'again', :no, 'telegram', :now, :now)"
                    ],
                )

            await downgrade(engine, "0009")
            assert await rows(engine, "SELECT id, name FROM community") == [(1, "幸福社区")]
            assert await rows(engine, "SELECT code FROM grids") == [("G1",)]
            assert await rows(engine, "SELECT grid_code, staff_id FROM grid_workers") == [("G1", "zhang")]
            kept = await rows(engine, "SELECT id, text FROM cases ORDER BY text")
            assert [t for _, t in kept] == ["3号楼小广告", "锦绣园3号楼"] and kept[0][0] == 7
            assert await rows(engine, "SELECT case_id FROM case_events") == [(7,)]
            assert await rows(engine, "SELECT resident_id FROM resident_identities") == [(1,)]
            await upgrade(engine, from_models=False)
            again = await rows(engine, "SELECT id, number, community_id FROM cases")
            assert len(again) == 2 and all(i == n and c == 1 for i, n, c in again)
        finally:
            await engine.dispose()
