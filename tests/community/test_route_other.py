"""Reports of no known category (`other`: street lights, lifts, leaks, noise …) that name a place are
handled in their grid like any other: its worker configured for `other`, else its leader, who gets
the case card and can act on it. Chat transcripts on the sample community and on tests/data's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case, CaseStatus
from handlers.community.model import Community, load_community, parse_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.support.chat import Chat, Clock, RecordingSender, chat_in
from tests.support.cli import lines, run

OWN = Path(__file__).parents[1] / "data" / "route_community.yaml"


@pytest.fixture(scope="module")
def own() -> Community:
    return load_community(OWN)


@pytest.fixture
async def own_chat(sessions: async_sessionmaker[AsyncSession], own: Community, clock: Clock) -> Chat:
    return await chat_in(sessions, own, clock)


async def case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def test_street_light_goes_to_the_grid_leader_who_handles_it(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼路灯坏了")
    stored = await case(chat, 1)
    assert (stored.category_code, stored.grid_code, stored.assignee_id) == ("other", "G1", "li")
    assert not stored.in_triage and stored.status == CaseStatus.ASSIGNED
    card = chat.to(out, "li")
    assert len(card) == 1 and "#1" in card[0] and "路灯坏了" in card[0] and "3号楼" in card[0]
    buttons = next(m.payload["buttons"] for m in out if m.recipient == "li")
    assert "accept:1" in [b["action"] for b in buttons]  # type: ignore[index]
    assert any("#1" in t and "李娜" in t for t in chat.to(out, "小王"))
    assert chat.to(out, "chen") == []  # not the admins' triage queue

    out = await chat.send("li", "接单 1")
    assert (await case(chat, 1)).status == CaseStatus.ACCEPTED
    out = await chat.send("li", "完成 1 已联系电工换了灯泡")
    assert (await case(chat, 1)).status == CaseStatus.RESOLVED
    assert any("已联系电工换了灯泡" in t for t in chat.to(out, "小王"))


async def test_other_goes_to_the_worker_configured_for_it(own_chat: Chat) -> None:
    out = await own_chat.send("小王", "15号楼电梯又坏了，老人上不去")
    stored = await case(own_chat, 1)
    assert (stored.category_code, stored.grid_code, stored.assignee_id) == ("other", "S2", "luo")
    assert any("#1" in t and "电梯" in t for t in own_chat.to(out, "luo"))
    assert own_chat.to(out, "feng") == [] and own_chat.to(out, "ma") == []
    assert any("罗小梅" in t for t in own_chat.to(out, "小王"))
    await own_chat.send("luo", "接单 1")
    assert (await case(own_chat, 1)).status == CaseStatus.ACCEPTED


async def test_other_in_a_grid_without_such_worker_goes_to_its_leader(own_chat: Chat) -> None:
    out = await own_chat.send("小李", "the street lights near building 30 are out")
    stored = await case(own_chat, 1)
    assert (stored.grid_code, stored.assignee_id) == ("W3", "xu")
    assert any("#1" in t for t in own_chat.to(out, "xu"))


async def test_unlocated_other_still_asks_where_then_routes(own_chat: Chat) -> None:
    out = await own_chat.send("小李", "路灯坏了好几天了晚上很黑")
    assert any("哪里" in t for t in own_chat.to(out, "小李"))
    await own_chat.send("小李", "在20号楼")
    stored = await case(own_chat, 1)
    assert (stored.grid_code, stored.assignee_id) == ("S2", "luo")


async def test_other_outside_every_grid_goes_to_triage(own_chat: Chat) -> None:
    out = await own_chat.send("小王", "88号楼的路灯坏了")
    stored = await case(own_chat, 1)
    assert stored.in_triage and stored.assignee_id is None
    assert any("待分拣" in t for t in own_chat.to(out, "ma"))


async def test_a_grid_with_nobody_for_other_sends_it_to_triage(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    data = load_community(OWN).config.model_dump(mode="json", exclude_defaults=True)
    data["grids"][0].pop("leader")
    community = parse_community(data)
    async with sessions.begin() as session:
        await sync_community(session, community)
    services = Services(sessions=sessions, community=community, channels=frozenset({"console"}), clock=clock)
    chat = Chat(services, conversation(services), RecordingSender("console"), clock)
    out = await chat.send("小王", "5号楼楼顶漏水")
    stored = await case(chat, 1)
    assert stored.in_triage and stored.grid_code == "N1" and stored.assignee_id is None
    assert any("待分拣" in t for t in chat.to(out, "ma"))
    async with sessions() as session:
        assert (await session.scalars(select(Case.category_code))).all() == ["other"]


def test_config_check_accepts_other_in_a_workers_categories() -> None:
    result = run(["config", "check", str(OWN)])
    assert result.returncode == 0, result.stderr.decode()


def test_route_cli_shows_who_the_chat_assigns_an_other_report() -> None:
    result = run(["route", "--config", str(OWN)], "3号楼路灯坏了\n15号楼电梯坏了\n88号楼路灯坏了\n路灯坏了\n")
    rows = lines(result)
    assert [(r["category"], r["grid"], r["assignee"]) for r in rows] == [
        ("other", "N1", "qian"),
        ("other", "S2", "luo"),
        ("other", None, None),
        ("other", None, None),
    ]
