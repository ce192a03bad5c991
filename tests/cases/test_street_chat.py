"""A deployment of two communities (tests/data/street/heping_street.yaml: 和平里社区 HPL and 锦绣园社区
JXY, each with its own G1 and its own "3号楼"): which community a resident is in (named, asked,
remembered, 换小区), routing within it, case numbers HPL-1 / JXY-1, and who may act on which case."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import Case
from handlers.community.street import Street, load_street
from handlers.kernel.inbound import Inbound
from storage.models import Community as CommunityRow
from storage.models import Resident, ResidentIdentity
from tests.support.chat import Chat, Clock, street_chat_in

STREET_FILE = Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml"


@pytest.fixture(scope="module")
def street() -> Street:
    return load_street(STREET_FILE)


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession], street: Street, clock: Clock) -> Chat:
    return await street_chat_in(sessions, street, clock)


async def cases_of(chat: Chat) -> list[tuple[str, int | None, str | None, str | None]]:
    """(community code, number, grid, assignee) of every case, oldest first."""
    async with chat.services.sessions() as session:
        codes = dict((await session.execute(select(CommunityRow.id, CommunityRow.code))).all())
        rows = (await session.scalars(select(Case).order_by(Case.id))).all()
    return [(codes.get(c.community_id, "?"), c.number, c.grid_code, c.assignee_id) for c in rows]


async def remembered(chat: Chat, who: str) -> str | None:
    async with chat.services.sessions() as session:
        identity = await session.get_one(ResidentIdentity, ("console", who))
        resident = await session.get_one(Resident, identity.resident_id)
        row = await session.get(CommunityRow, resident.community_id) if resident.community_id else None
    return row.code if row is not None else None


async def test_each_community_routes_its_own_building_3_and_numbers_its_cases(chat: Chat) -> None:
    out = await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")
    assert any("#HPL-1" in t for t in chat.to(out, "小李"))
    assert any("HPL-1" in t for t in chat.to(out, "hzhang")) or await cases_of(chat)
    out = await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")
    assert any("#JXY-1" in t for t in chat.to(out, "小王"))
    assert await cases_of(chat) == [("HPL", 1, "G1", "hzhang"), ("JXY", 1, "G1", "jwang")]
    # remembered: the next report names no community and goes to the same one
    await chat.send("小王", "5号楼门口垃圾堆了好几天")
    assert (await cases_of(chat))[-1] == ("JXY", 2, "G1", "jwang")
    assert await remembered(chat, "小王") == "JXY"
    out = await chat.send("小王", "查询 JXY-2")  # residents type numbers the way they were shown
    assert any("JXY-2" in t for t in chat.to(out, "小王"))
    out = await chat.send("小王", "查询 HPL-1")  # someone else's case: not found, the same words
    assert not any("HPL-1" in t and "没有找到" not in t for t in chat.to(out, "小王"))


async def test_an_unknown_community_is_asked_and_the_report_filed_in_the_answer(chat: Chat) -> None:
    out = await chat.send("小赵", "3号楼楼道里贴满了小广告")
    asked = chat.to(out, "小赵")
    assert len(asked) == 1 and "1. 和平里社区" in asked[0] and "2. 锦绣园社区" in asked[0]
    assert await cases_of(chat) == []  # not filed in a guessed community
    # a command is not an answer: it is answered, and the question stays
    out = await chat.send("小赵", "我的")
    assert out and not any("锦绣园社区" in t for t in chat.to(out, "小赵"))
    out = await chat.send("小赵", "2")  # WeChat and the console: a numbered reply
    assert any("#JXY-1" in t for t in chat.to(out, "小赵"))
    assert await cases_of(chat) == [("JXY", 1, "G1", "jwang")]
    assert await remembered(chat, "小赵") == "JXY"
    # next time nothing is asked
    out = await chat.send("小赵", "6号楼下水道堵了")
    assert not any("哪个社区" in t for t in chat.to(out, "小赵"))
    assert (await cases_of(chat))[-1][:2] == ("JXY", 2)


async def test_a_second_report_waits_with_the_first_and_both_are_filed(chat: Chat) -> None:
    await chat.send("小钱", "3号楼楼道里贴满了小广告")
    out = await chat.send("小钱", "另外4号楼下水道堵了")
    assert any("哪个社区" in t for t in chat.to(out, "小钱"))  # asked again, not swallowed
    await chat.send("小钱", "1")
    assert [c[:2] for c in await cases_of(chat)] == [("HPL", 1), ("HPL", 2)]


async def test_telegram_buttons_answer_the_question(chat: Chat) -> None:
    out = await chat.send("tg1", "3号楼楼道里贴满了小广告")
    buttons = out[-1].payload["buttons"]
    assert [b["label"] for b in buttons] == ["和平里社区", "锦绣园社区"]  # type: ignore[index]
    await chat.conversation.act(Inbound(channel="console", sender="tg1", text=None), buttons[0]["action"])  # type: ignore[index]
    delivered = await chat.flush()
    assert any("#HPL-1" in t for t in chat.to(delivered, "tg1"))
    assert await cases_of(chat) == [("HPL", 1, "G1", "hzhang")]


async def test_a_message_naming_the_community_answers_too(chat: Chat) -> None:
    await chat.send("小孙", "3号楼楼道里贴满了小广告")
    out = await chat.send("小孙", "锦绣园")
    assert any("锦绣园社区" in t for t in chat.to(out, "小孙"))
    assert await cases_of(chat) == [("JXY", 1, "G1", "jwang")]


async def test_change_community(chat: Chat) -> None:
    await chat.send("小周", "锦绣园3号楼有垃圾")
    assert await remembered(chat, "小周") == "JXY"
    out = await chat.send("小周", "换小区 和平里")
    assert any("和平里社区" in t for t in chat.to(out, "小周"))
    await chat.send("小周", "3号楼有垃圾没人清")
    assert (await cases_of(chat))[-1][:2] == ("HPL", 1)
    out = await chat.send("小周", "换社区")
    assert any("1. 和平里社区" in t for t in chat.to(out, "小周"))
    await chat.send("小周", "2")
    assert await remembered(chat, "小周") == "JXY"


async def test_staff_act_on_their_communities_cases_only(chat: Chat) -> None:
    await chat.send("小李", "和平里3号楼楼道里贴满了小广告")  # HPL-1, hzhang's
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")  # JXY-1, jwang's
    out = await chat.send("jwang", "接单 HPL-1")
    assert any("无权" in t for t in chat.to(out, "jwang"))
    out = await chat.send("jchen", "查看 HPL-1")  # an admin of the other community
    assert any("无权" in t for t in chat.to(out, "jchen"))
    out = await chat.send("hzhang", "接单 hpl1")
    assert any("已接单 #HPL-1" in t for t in chat.to(out, "hzhang"))
    out = await chat.send("jwang", "接单 1")  # a bare number: within their only community
    assert any("已接单 #JXY-1" in t for t in chat.to(out, "jwang"))
    out = await chat.send("zhao", "查看 HPL-1")  # the 街道 admin: every community
    assert not any("无权" in t for t in chat.to(out, "zhao"))
    assert any("HPL-1" in t for t in chat.to(out, "zhao"))


async def test_old_numbers_still_name_their_cases(chat: Chat) -> None:
    # A case from before the upgrade: number = id; staff type the bare id.
    await chat.send("小李", "和平里3号楼楼道里贴满了小广告")
    async with chat.services.sessions() as session:
        case_id = (await session.scalars(select(Case.id))).one()
    out = await chat.send("zhao", f"查看 {case_id}")
    assert not any("没有找到" in t for t in chat.to(out, "zhao"))


async def test_escalation_goes_up_the_case_communitys_ladder(chat: Chat) -> None:
    from handlers.cases.deadlines import scan

    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")  # JXY-1: jwang, leader jli
    chat.clock.advance(days=3)
    assert await scan(chat.services) == 1
    out = await chat.flush()
    assert any("JXY-1" in t for t in chat.to(out, "jli"))
    assert not chat.to(out, "hli")  # the other community's leader of its own G1 hears nothing


async def test_a_street_level_leader_lists_only_the_grids_they_lead(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """Both communities have a G1; a 街道-level leader who leads HPL's G1 sees HPL's G1 cases, not JXY's."""
    import yaml

    from handlers.community.street import parse_street

    data = yaml.safe_load(STREET_FILE.read_text(encoding="utf-8"))
    data["admins"].append({"id": "gao", "name": "高明", "role": "leader"})
    data["communities"][0]["grids"][0]["leader"] = "gao"
    chat = await street_chat_in(sessions, parse_street(data, STREET_FILE.parent), clock)
    await chat.send("小李", "和平里3号楼楼道里贴满了小广告")  # HPL-1, in HPL's G1
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")  # JXY-1, in JXY's G1
    listed = "\n".join(chat.to(await chat.send("gao", "任务"), "gao"))
    assert "HPL-1" in listed
    assert "JXY-1" not in listed
