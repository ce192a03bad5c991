"""One message naming several problems becomes one case per problem (issue #12 point 3).

Transcripts through the real ``Conversation`` on SQLite and PostgreSQL: each case gets the clause that
names it (the first keeps the whole text), is placed where its clause says (else where the message
says), is routed to its own worker, is linked to its siblings by an event, and the resident's one
acknowledgement lists every number.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from handlers.cases import deadlines
from handlers.cases.models import Case, CaseEvent, CaseStatus
from tests.support.chat import Chat

TWO = "楼道到处都是小广告，而且楼下下水道也堵了好几天了"


async def all_cases(chat: Chat) -> list[Case]:
    async with chat.services.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def links(chat: Chat) -> dict[int, list[int]]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(select(CaseEvent).where(CaseEvent.action == "linked"))
        return {e.case_id: list(e.data["siblings"]) for e in rows}


async def test_two_problems_at_one_building_are_two_cases_for_two_workers(chat: Chat) -> None:
    out = await chat.send("小王", "3号楼" + TWO)
    poster, sewer = await all_cases(chat)
    assert (poster.category_code, poster.assignee_id, poster.building) == ("poster", "zhang", "3")
    assert (sewer.category_code, sewer.assignee_id, sewer.building) == ("sewage", "wang", "3")
    assert poster.text == "3号楼" + TWO  # the whole message stays with the first
    assert sewer.text == "楼下下水道也堵了好几天了"  # the clause that names the sewer
    assert await links(chat) == {1: [2], 2: [1]}
    # Each worker hears of their own case only.
    assert [t for t in chat.to(out, "wang") if "【新案件】" in t] == [
        next(t for t in chat.to(out, "wang") if "#2" in t)
    ]
    assert any("#1" in t for t in chat.to(out, "zhang")) and not any("#2" in t for t in chat.to(out, "zhang"))
    # One acknowledgement with both numbers and both handlers.
    ack = chat.to(out, "小王")
    assert len(ack) == 1
    assert "#1" in ack[0] and "#2" in ack[0] and "张伟" in ack[0] and "王芳" in ack[0]


async def test_each_clause_places_its_own_problem(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告；8号楼门口下水道污水冒出来了")
    poster, sewer = await all_cases(chat)
    assert (poster.grid_code, poster.building, poster.assignee_id) == ("G1", "3", "zhang")
    assert (sewer.grid_code, sewer.building, sewer.assignee_id) == ("G2", "8", "zhao")


async def test_several_problems_without_a_place_share_one_question(chat: Chat) -> None:
    out = await chat.send("小王", TWO)
    told = chat.to(out, "小王")
    assert len(told) == 1 and "#1" in told[0] and "#2" in told[0] and "哪里" in told[0]
    assert all(c.status == CaseStatus.NEW for c in await all_cases(chat))
    out = await chat.send("小王", "5号楼")
    poster, sewer = await all_cases(chat)
    assert (poster.assignee_id, sewer.assignee_id) == ("zhang", "wang")
    assert poster.building == sewer.building == "5"
    ack = chat.to(out, "小王")
    assert len(ack) == 1 and "#1" in ack[0] and "#2" in ack[0]
    assert chat.to(out, "zhang") and chat.to(out, "wang")


async def test_several_unplaced_problems_go_to_triage_together_after_the_wait(chat: Chat) -> None:
    await chat.send("小王", TWO)
    chat.clock.advance(minutes=31)
    await deadlines.scan(chat.services)
    out = await chat.flush()
    assert all(c.in_triage for c in await all_cases(chat))
    cards = [t for t in chat.to(out, "chen") if "【待分拣】" in t]
    assert any("#1" in t for t in cards) and any("#2" in t for t in cards)


async def test_cancel_withdraws_every_unplaced_problem(chat: Chat) -> None:
    await chat.send("小王", TWO)
    out = await chat.send("小王", "取消")
    assert any("#1、#2" in t and "已撤回" in t for t in chat.to(out, "小王"))
    assert [c.close_reason for c in await all_cases(chat)] == ["withdrawn", "withdrawn"]


async def test_one_problem_named_twice_stays_one_case(chat: Chat) -> None:
    await chat.send("小王", "3号楼门口垃圾堆成山了，垃圾桶也满了")
    assert len(await all_cases(chat)) == 1


async def test_a_problem_word_that_only_says_where_is_no_second_case(chat: Chat) -> None:
    for n, text in enumerate(
        ["5号楼垃圾站旁边苍蝇嗡嗡的", "3号楼垃圾桶旁边积水很多蚊子", "6号楼下水道口旁边有很多蟑螂"], 1
    ):
        await chat.send(f"居民{n}", text)
    assert [c.category_code for c in await all_cases(chat)] == ["pests", "mosquito", "pests"]


async def test_a_problem_in_a_clause_of_its_own_is_a_second_case(chat: Chat) -> None:
    out = await chat.send("小王", "8号楼门口的垃圾桶满了，还有老鼠")
    garbage, pests = await all_cases(chat)
    assert (garbage.category_code, pests.category_code) == ("garbage", "pests")
    assert pests.text == "老鼠"  # its clause, the connective 还有 left out
    assert pests.building == "8" and pests.assignee_id == "zhao"
    assert len(chat.to(out, "小王")) == 1


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("3号楼楼道里全是小广告，电梯也坏了好几天了", "poster"),
        ("3号楼垃圾没人清，而且路灯也不亮", "garbage"),
        ("3号楼下水道堵了，另外楼上一直在漏水", "sewage"),
    ],
)
async def test_a_problem_of_no_category_said_beside_a_known_one_is_its_own_case(
    chat: Chat, text: str, first: str
) -> None:
    # The second problem is "other" (a lift, a lamp, a leak): it is not lost in the first one's case.
    out = await chat.send("小王", text)
    known, other = await all_cases(chat)
    assert (known.category_code, other.category_code) == (first, "other")
    assert known.text == text and other.text in text and other.text != text
    assert (await links(chat)) == {1: [2], 2: [1]}
    told = "\n".join(chat.to(out, "小王"))
    assert "#1" in told and "#2" in told


@pytest.mark.parametrize(
    "text",
    [
        "3号楼垃圾堆在楼道口，走路都过不去",
        "3号楼楼道里小广告贴满了，太难看了",
        "3号楼老鼠把电线咬坏了，灯都不亮了",
    ],
)
async def test_what_a_problem_causes_is_not_a_second_case(chat: Chat, text: str) -> None:
    await chat.send("小王", text)
    assert len(await all_cases(chat)) == 1
