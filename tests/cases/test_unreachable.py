"""Nobody is left holding a case nobody hears of (issue #12 points 4 and 5).

A case for a worker with no reachable account goes at once to the grid leader, else to the admins'
triage queue; a report left unplaced for 30 minutes reaches the admins as a 【待分拣】 card (the leaders
when no admin can be reached); the daily digest names the staff nobody can reach. Transcripts through
the real ``Conversation`` and the real escalation scan, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update

from handlers.cases import deadlines
from handlers.cases.digest import send_digests
from handlers.cases.models import Case, CaseEvent
from storage.models import StaffIdentity
from tests.support.chat import Chat


async def get_case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def events(chat: Chat, number: int) -> list[tuple[str, str | None]]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == number).order_by(CaseEvent.id)
        )
        return [(e.action, e.note) for e in rows]


async def blocked(chat: Chat, staff_id: str) -> None:
    """The platform told us the staff member's account blocked the bot."""
    async with chat.services.sessions.begin() as session:
        await session.execute(
            update(StaffIdentity)
            .where(StaffIdentity.staff_id == staff_id)
            .values(unreachable_since=chat.clock.now)
        )


async def unbound(chat: Chat, staff_id: str) -> None:
    """The staff member has no chat account at all."""
    async with chat.services.sessions.begin() as session:
        await session.execute(delete(StaffIdentity).where(StaffIdentity.staff_id == staff_id))


async def test_a_case_for_an_unreachable_worker_goes_to_the_grid_leader_at_once(chat: Chat) -> None:
    await unbound(chat, "zhao")
    out = await chat.send("小王", "8号楼下水道堵了污水冒出来")  # G2 sewage: zhao
    case = await get_case(chat, 1)
    assert case.assignee_id == "li"
    assert ("unreachable", "zhao") in await events(chat, 1)
    assert any("【新案件】#1" in t for t in chat.to(out, "li"))
    ack = chat.to(out, "小王")
    assert len(ack) == 1 and "网格长李娜" in ack[0] and "赵磊" not in ack[0]


async def test_with_the_leader_unreachable_too_it_goes_to_the_admins(chat: Chat) -> None:
    await blocked(chat, "zhao")
    await blocked(chat, "li")
    out = await chat.send("小王", "8号楼下水道堵了污水冒出来")
    case = await get_case(chat, 1)
    assert case.in_triage and case.assignee_id is None
    cards = [t for t in chat.to(out, "chen") if "【待分拣】#1" in t]
    assert len(cards) == 1 and "负责人无法联系" in cards[0]
    assert any("#1" in t and "分派" in t for t in chat.to(out, "小王"))
    # It is in the admins' queue, and assigning it works.
    out = await chat.send("chen", "待分拣")
    assert any("#1" in t for t in chat.to(out, "chen"))
    await chat.send("chen", "分派 1 wang")
    assert (await get_case(chat, 1)).assignee_id == "wang"


async def test_a_reopened_case_whose_worker_left_goes_to_the_leader(chat: Chat) -> None:
    await chat.send("小王", "3号楼楼道里贴满了小广告")
    await chat.send("zhang", "完成 1 已清理")
    await unbound(chat, "zhang")
    out = await chat.send("小王", "不满意 1 还是很多")
    assert (await get_case(chat, 1)).assignee_id == "li"
    assert any("#1" in t for t in chat.to(out, "li"))


async def test_staff_assigning_to_an_unreachable_worker_are_warned(chat: Chat) -> None:
    await chat.send("小王", "社区里的路灯坏了")
    await chat.send("小王", "不知道")
    await unbound(chat, "zhao")
    out = await chat.send("chen", "分派 1 zhao")
    assert any("赵磊目前联系不上" in t for t in chat.to(out, "chen"))


async def test_unplaced_report_reaches_the_admins_as_a_triage_card_after_the_wait(chat: Chat) -> None:
    await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    chat.clock.advance(minutes=29)
    await deadlines.scan(chat.services)
    assert await chat.flush() == []
    chat.clock.advance(minutes=2)
    await deadlines.scan(chat.services)
    out = await chat.flush()
    cards = chat.to(out, "chen")
    assert len(cards) == 1 and cards[0].startswith("【待分拣】#1") and "居民未能说明位置" in cards[0]
    assert any("#1" in t for t in chat.to(out, "小王"))


async def test_with_no_admin_reachable_the_triage_card_goes_to_the_leaders(chat: Chat) -> None:
    await unbound(chat, "chen")
    await chat.send("小王", "这里的垃圾桶满了好几天没人清")
    chat.clock.advance(minutes=31)
    await deadlines.scan(chat.services)
    out = await chat.flush()
    assert any(t.startswith("【待分拣】#1") for t in chat.to(out, "li"))
    assert any(t.startswith("【待分拣】#1") for t in chat.to(out, "zhou"))
    assert ("unreachable", "admins") in await events(chat, 1)


async def test_the_daily_digest_tells_the_admins_who_cannot_be_reached(chat: Chat) -> None:
    await unbound(chat, "zhao")
    await blocked(chat, "wu")
    chat.clock.now = datetime(2026, 11, 24, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    await send_digests(chat.services)
    out = await chat.flush()
    digest = chat.to(out, "chen")
    assert len(digest) == 1 and "联系不上" in digest[0]
    assert "赵磊（zhao" in digest[0] and "吴强（wu" in digest[0] and "张伟" not in digest[0]
    assert not any("联系不上" in t for t in chat.to(out, "li"))
