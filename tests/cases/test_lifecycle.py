"""The full case lifecycle through the real conversation and escalation scan, on SQLite and PostgreSQL:
time limits in working time, the escalation ladder, the reporter's loop, duplicates, transfers,
closing without a fix, staff binding, roles and abuse limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases import deadlines
from handlers.cases.models import Case, CaseEvent, CaseStatus
from handlers.community.model import Community, load_community, parse_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel import binding
from handlers.kernel.context import Services
from handlers.kernel.inbound import Inbound
from handlers.kernel.people import Address
from storage.models import Resident, ResidentIdentity
from tests.support.chat import Chat, Clock, Delivered, RecordingSender

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture(scope="module")
def community() -> Community:
    """The sample community with a declared holiday (Monday 30 November) and place coordinates."""
    data = yaml.safe_load(load_community(None).config.model_dump_json())
    data["working_time"] = {"holidays": ["2026-11-30"], "national_holidays": False}
    data["grids"][0]["place_coordinates"] = {"东门": [31.2304, 121.4737]}
    return parse_community(data)


@pytest.fixture
async def life(sessions: async_sessionmaker[AsyncSession], community: Community, clock: Clock) -> Chat:
    async with sessions.begin() as session:
        await sync_community(session, community)
    services = Services(sessions=sessions, community=community, channels=frozenset({"console"}), clock=clock)
    return Chat(services, conversation(services), RecordingSender("console"), clock)


async def get_case(chat: Chat, number: int) -> Case:
    async with chat.services.sessions() as session:
        return await session.get_one(Case, number)


async def actions(chat: Chat, number: int) -> list[str]:
    async with chat.services.sessions() as session:
        rows = await session.scalars(
            select(CaseEvent.action).where(CaseEvent.case_id == number).order_by(CaseEvent.id)
        )
        return list(rows)


async def scan(chat: Chat) -> list[Delivered]:
    await deadlines.scan(chat.services)
    return await chat.flush()


# -- time limits and escalation ----------------------------------------------------------------------


async def test_escalation_fires_once_each_at_working_time_moments_across_weekend_and_holiday(
    life: Chat,
) -> None:
    life.clock.now = local(2026, 11, 27, 16, 0)  # Friday 16:00; garbage has a 4 working-hour limit
    out = await life.send("小王", "3号楼门口垃圾堆满了")
    assert any("12月01日 11:00" in t for t in life.to(out, "小王"))  # weekend + Monday holiday skipped
    case = await get_case(life, 1)
    assert case.due_at == local(2026, 12, 1, 11, 0)

    ladder = [
        (local(2026, 12, 1, 9, 0), "zhang", "一半"),  # 50 %: 1.5 h on Friday, 0.5 h on Tuesday
        (local(2026, 12, 1, 11, 0), "li", "超时督办"),  # 100 %: the grid leader
        (local(2026, 12, 2, 11, 30), "chen", "3倍"),  # 3x = 12 h: the admins
    ]
    for moment, who, words in ladder:
        life.clock.now = moment - timedelta(minutes=1)
        assert await scan(life) == []
        life.clock.now = moment
        out = await scan(life)
        assert any(words in t and "#1" in t for t in life.to(out, who)), (who, [m.text for m in out])
        assert await scan(life) == []  # once each
    life.clock.now = local(2026, 12, 20, 10, 0)
    assert await scan(life) == []
    assert [a for a in await actions(life, 1) if a.startswith(("warned", "escalated"))] == [
        "warned",
        "escalated_leader",
        "escalated_admin",
    ]
    assert (await get_case(life, 1)).status == CaseStatus.ASSIGNED  # nobody accepted: still escalated


async def test_a_late_scan_sends_every_missed_rung_once_and_resolution_stops_the_ladder(life: Chat) -> None:
    await life.send("小王", "3号楼门口垃圾堆满了")
    life.clock.advance(days=10)
    out = await scan(life)
    assert life.to(out, "zhang") and life.to(out, "li") and life.to(out, "chen")
    await life.send("小王", "5号楼门口垃圾桶满了")
    await life.send("zhang", "完成 2 已清运")
    life.clock.advance(days=10)
    out = await scan(life)
    assert all("#2" not in m.text or "满意" in m.text for m in out)
    assert (await get_case(life, 2)).status == CaseStatus.CONFIRMED  # nobody rated: auto-confirmed


async def test_urgent_reports_get_a_shorter_limit(life: Chat) -> None:
    await life.send("小王", "3号楼门口垃圾堆满了")
    await life.send("小李", "紧急 4号楼下水道冒污水了很危险")
    normal, urgent = await get_case(life, 1), await get_case(life, 2)
    assert urgent.urgent and not normal.urgent
    assert urgent.time_limit_hours == pytest.approx(normal.time_limit_hours / 2)  # both 4 h categories


# -- the reporter's loop ------------------------------------------------------------------------------


async def test_full_loop_report_reopen_reclose_confirm(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("zhang", "接单 1")
    await life.send("zhang", "处理中 1")
    out = await life.send("zhang", "完成 1 已清理")
    asked = life.to(out, "小王")
    assert any("满意吗" in t for t in asked)
    buttons = next(m.payload["buttons"] for m in out if m.recipient == "小王")
    assert [b["action"] for b in buttons] == ["good:1", "bad:1"]

    out = await life.send("小王", "2")
    assert any("原因" in t for t in life.to(out, "小王"))
    assert (await get_case(life, 1)).status == CaseStatus.RESOLVED
    out = await life.send("小王", "楼道里还有好几张没撕")
    assert any("重新打开" in t and "好几张没撕" in t for t in life.to(out, "zhang"))
    assert any("张伟" in t for t in life.to(out, "小王"))
    reopened = await get_case(life, 1)
    assert (reopened.status, reopened.assignee_id, reopened.reopen_count) == (CaseStatus.ASSIGNED, "zhang", 1)

    await life.send("zhang", "完成 1 剩下的也清理干净了")
    out = await life.send("小王", "满意")
    assert any("感谢" in t for t in life.to(out, "小王"))
    assert any("满意" in t for t in life.to(out, "zhang"))
    final = await get_case(life, 1)
    assert (final.status, final.rating) == (CaseStatus.CONFIRMED, "good")
    assert await actions(life, 1) == [
        "reported",
        "assigned",
        "accepted",
        "in_progress",
        "resolved",
        "reopened",
        "resolved",
        "confirmed",
    ]
    async with life.services.sessions() as session:
        events = (
            await session.scalars(select(CaseEvent).where(CaseEvent.case_id == 1).order_by(CaseEvent.id))
        ).all()
    reopen = next(e for e in events if e.action == "reopened")
    assert (reopen.actor_type, reopen.note, reopen.from_status, reopen.to_status) == (
        "resident",
        "楼道里还有好几张没撕",
        "resolved",
        "assigned",
    )


async def test_rating_buttons_and_inline_reason(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("zhang", "完成 1 已清理")
    await life.send("小王", "不满意 1 还是很多")
    assert (await get_case(life, 1)).reopen_count == 1
    await life.send("zhang", "完成 1 全部清理")
    await life.conversation.act(Inbound(channel="console", sender="小王"), "good:1")
    assert (await get_case(life, 1)).status == CaseStatus.CONFIRMED
    out = await life.send("小王", "满意 1")
    assert any("不需要评价" in t for t in life.to(out, "小王"))


async def test_only_the_reporter_can_rate(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("zhang", "完成 1 已清理")
    out = await life.send("小李", "不满意 1 没处理")
    assert any("注明案件编号" in t for t in life.to(out, "小李"))
    assert (await get_case(life, 1)).status == CaseStatus.RESOLVED


# -- duplicates ---------------------------------------------------------------------------------------


async def test_duplicate_is_offered_and_followers_are_told(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    out = await life.send("小李", "三号楼好多牛皮癣")
    offer = life.to(out, "小李")[0]
    assert "#1" in offer and "关注" in offer
    assert life.to(out, "zhang") == []  # not routed while the resident decides
    out = await life.send("小李", "1")
    assert any("已关注 #1" in t for t in life.to(out, "小李"))
    second = await get_case(life, 2)
    assert (second.status, second.close_reason, second.duplicate_of) == (CaseStatus.CLOSED, "duplicate", 1)
    out = await life.send("zhang", "完成 1 已清理")
    assert life.to(out, "小王") and any("关注的问题 #1" in t for t in life.to(out, "小李"))


async def test_not_the_same_problem_is_routed_as_new(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("小李", "3号楼电梯里也贴了小广告")
    out = await life.send("小李", "新报")
    assert (await get_case(life, 2)).assignee_id == "zhang" and life.to(out, "zhang")


async def test_unanswered_duplicate_question_is_routed_after_a_while(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("小李", "3号楼电梯里也贴了小广告")
    life.clock.advance(minutes=31)
    out = await scan(life)
    assert (await get_case(life, 2)).status == CaseStatus.ASSIGNED and life.to(out, "zhang")


async def test_staff_merge_duplicates(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("小李", "3号楼楼道小广告")
    await life.send("小李", "新报")
    out = await life.send("zhang", "重复 2 1")
    assert any("合并" in t for t in life.to(out, "zhang")) and any("#1" in t for t in life.to(out, "小李"))
    assert (await get_case(life, 2)).duplicate_of == 1
    out = await life.send("zhang", "完成 1 已清理")
    assert life.to(out, "小李")  # the duplicate's reporter follows the original now


# -- transfers and closing without a fix ----------------------------------------------------------------


async def test_transfer_keeps_the_clock_and_refer_closes_without_a_fix(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里有积水")
    before = await get_case(life, 1)
    assert before.assignee_id == "wang"
    out = await life.send("wang", "转派 1 zhang 这是垃圾问题")
    after = await get_case(life, 1)
    assert after.assignee_id == "zhang" and after.due_at == before.due_at
    assert life.to(out, "zhang")
    await life.send("zhang", "转网格 1 G2")
    assert (await get_case(life, 1)).grid_code == "G2"
    out = await life.send("zhao", "转交 1 市政排水公司")
    closed = await get_case(life, 1)
    assert (closed.status, closed.close_reason, closed.referral) == (
        CaseStatus.CLOSED,
        "not_ours",
        "市政排水公司",
    )
    assert any("市政排水公司" in t for t in life.to(out, "小王"))
    assert closed.next_alarm_at is None


async def test_transfer_button_asks_whom(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.conversation.act(Inbound(channel="console", sender="zhang"), "transfer:1")
    out = await life.flush()
    buttons = next(m.payload["buttons"] for m in out if m.recipient == "zhang")
    assert "transfer:1:wang" in [b["action"] for b in buttons]
    await life.conversation.act(Inbound(channel="console", sender="zhang"), "transfer:1:wang")
    assert (await get_case(life, 1)).assignee_id == "wang"


# -- roles -----------------------------------------------------------------------------------------------


async def test_roles_limit_who_acts_on_which_case(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")  # G1, zhang; leader li
    await life.send("小王", "15号楼有老鼠")  # G3, zheng; leader zhou
    for who, text in (("wu", "接单 1"), ("zhou", "完成 1 好了"), ("zhang", "接单 2"), ("li", "转派 2 wu")):
        out = await life.send(who, text)
        assert any("无权" in t for t in life.to(out, who)), (who, text)
    assert (await get_case(life, 1)).status == CaseStatus.ASSIGNED
    assert (await get_case(life, 2)).assignee_id == "zheng"
    await life.send("li", "分派 1 wang")  # the leader of G1 reassigns within the grid
    assert (await get_case(life, 1)).assignee_id == "wang"
    await life.send("chen", "完成 2 已消杀")  # admins act on every case
    assert (await get_case(life, 2)).status == CaseStatus.RESOLVED
    out = await life.send("zhang", "拉黑 1")
    assert any("仅限" in t for t in life.to(out, "zhang"))


# -- staff binding ---------------------------------------------------------------------------------------


async def test_invite_code_binds_an_account_once(life: Chat) -> None:
    async with life.services.sessions.begin() as session:
        code = await binding.create_invite(session, "wang", life.clock())
    await life.send("小王", "5号楼下水道堵了")  # wang's case
    telegram = Address("telegram", "777")
    await life.conversation.handle(Inbound(channel="telegram", sender="777", text="接单 1"))
    assert (await get_case(life, 1)).status == CaseStatus.ASSIGNED  # not bound yet: a resident
    await life.conversation.handle(Inbound(channel="telegram", sender="777", text=f"绑定 {code.lower()}"))
    await life.conversation.handle(Inbound(channel="telegram", sender="777", text="接单 1"))
    assert (await get_case(life, 1)).status == CaseStatus.ACCEPTED
    async with life.services.sessions.begin() as session:
        assert await binding.redeem(session, code, Address("telegram", "888"), life.clock()) is None  # used
        expired = await binding.create_invite(session, "zhang", life.clock() - timedelta(days=8))
        assert await binding.redeem(session, expired, telegram, life.clock()) is None


# -- abuse ------------------------------------------------------------------------------------------------


async def test_rate_limit_and_block(life: Chat) -> None:
    limit = life.services.community.config.limits.reports_per_hour
    for n in range(limit):
        await life.send("刷屏者", f"{n % 6 + 1}号楼垃圾满了{n}")
        await life.send("刷屏者", "新报")  # answer any duplicate offer
    out = await life.send("刷屏者", "1号楼又有垃圾了")
    assert any("一小时内" in t for t in life.to(out, "刷屏者"))
    async with life.services.sessions() as session:
        assert len((await session.scalars(select(Case))).all()) == limit
    life.clock.advance(hours=1, minutes=1)
    await life.send("chen", "拉黑 1")
    out = await life.send("刷屏者", "2号楼垃圾满了")
    assert life.to(out, "刷屏者") == ["消息已收到。"] and life.to(out, "zhang") == []
    async with life.services.sessions() as session:
        assert len((await session.scalars(select(Case))).all()) == limit
        sender = await session.get_one(ResidentIdentity, ("console", "刷屏者"))
        assert (await session.get_one(Resident, sender.resident_id)).blocked
    await life.send("chen", "解除拉黑 1")
    out = await life.send("刷屏者", "2号楼垃圾满了")
    assert life.to(out, "zhang") or any("#" in t for t in life.to(out, "刷屏者"))


# -- waiting for the resident; location pins ----------------------------------------------------------------


async def test_unanswered_location_question_goes_to_triage(life: Chat) -> None:
    await life.send("小王", "垃圾桶满了好几天没人清")
    life.clock.advance(minutes=29)
    assert await scan(life) == []
    life.clock.advance(minutes=2)
    out = await scan(life)
    assert (await get_case(life, 1)).in_triage and life.to(out, "chen")


async def test_location_pin_maps_to_the_nearest_place(life: Chat) -> None:
    await life.conversation.handle(
        Inbound(channel="console", sender="小王", text="这里垃圾桶满了", latitude=31.2305, longitude=121.4738)
    )
    out = await life.flush()
    case = await get_case(life, 1)
    assert (case.grid_code, case.place, case.assignee_id) == ("G1", "东门", "zhang") and life.to(out, "zhang")
    await life.conversation.handle(
        Inbound(channel="console", sender="小李", text="这里积水很多", latitude=31.30, longitude=121.40)
    )
    out = await life.flush()
    assert any("哪里" in t for t in life.to(out, "小李"))  # too far from every place: ask


# -- daily digest -------------------------------------------------------------------------------------------


async def test_daily_digest_once_a_day_to_workers_and_leaders(life: Chat) -> None:
    from handlers.cases.digest import send_digests

    life.clock.now = local(2026, 12, 1, 7, 0)  # Tuesday before the digest time (08:30)
    await life.send("小王", "3号楼楼道里贴满了小广告")
    await life.send("小王", "5号楼下水道堵了")
    assert await send_digests(life.services) == 0
    life.clock.now = local(2026, 12, 3, 8, 30)  # Thursday: both cases are overdue by now
    assert await send_digests(life.services) > 0
    out = await life.flush()
    zhang, li = life.to(out, "zhang"), life.to(out, "li")
    assert len(zhang) == 1 and "#1" in zhang[0] and "#2" not in zhang[0] and "超时" in zhang[0]
    assert len(li) == 1 and "#1" in li[0] and "#2" in li[0]
    assert life.to(out, "zhou") == []  # nothing open in zhou's grids
    life.clock.advance(hours=3)
    assert await send_digests(life.services) == 0  # once a day
    life.clock.now = local(2026, 12, 5, 9, 0)  # Saturday: no digest
    assert await send_digests(life.services) == 0


async def test_two_concurrent_scans_send_each_rung_once(life: Chat) -> None:
    import asyncio

    for n in range(1, 7):
        await life.send(f"居民{n}", f"{n}号楼门口垃圾堆满了")
        await life.send(f"居民{n}", "新报")
    life.clock.advance(days=10)
    await asyncio.gather(deadlines.scan(life.services), deadlines.scan(life.services))
    out = await life.flush()
    for number in range(1, 7):
        warned = [m for m in out if m.recipient == "zhang" and f"#{number} " in m.text and "一半" in m.text]
        assert len(warned) == 1, number
    async with life.services.sessions() as session:
        rows = (
            await session.scalars(select(CaseEvent.action).where(CaseEvent.action == "escalated_admin"))
        ).all()
    assert len(rows) == 6


async def test_health_staff_see_no_cases_and_cannot_act_on_them(life: Chat) -> None:
    await life.send("小王", "3号楼楼道里贴满了小广告")
    for text in ("任务", "接单 1", "分派 1 wang", "统计", "查看 1"):
        out = await life.send("he", text)
        replies = life.to(out, "he")
        assert replies and all("#1" not in t or "无权" in t for t in replies), text
    assert (await get_case(life, 1)).status == CaseStatus.ASSIGNED
    assert "随访登记" in life.to(await life.send("he", "帮助"), "he")[0]
