"""A duplicate is a report of the same problem at the same place of the same community: each community
of a 街道 has its own G1 and its own 3号楼, and a report in one is never offered another's case."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case
from handlers.community.street import load_street
from tests.support.chat import Chat, Clock, street_chat_in

STREET = Path(__file__).resolve().parents[1] / "data" / "street" / "heping_street.yaml"


async def street_chat(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> Chat:
    return await street_chat_in(sessions, load_street(STREET), clock)


async def test_the_same_building_in_another_community_is_not_a_duplicate(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    chat = await street_chat(sessions, clock)
    await chat.send("甲", "和平里3号楼楼道里全是小广告")
    out = await chat.send("乙", "锦绣园3号楼楼道里全是小广告")
    assert not any("关注" in t for t in chat.to(out, "乙")), chat.to(out, "乙")
    out = await chat.send("丙", "和平里3号楼楼道里全是小广告")
    assert any("关注" in t for t in chat.to(out, "丙")), chat.to(out, "丙")  # the same community's: offered
    async with sessions() as session:
        rows = (await session.execute(select(Case.community_id, Case.building).order_by(Case.id))).all()
    assert len({community for community, _ in rows}) == 2
    assert {building for _, building in rows} == {"3"}
