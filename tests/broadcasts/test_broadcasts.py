"""Broadcasts and the outreach calendar (SQLite and PostgreSQL): audience resolution, confirmation,
opt-out and back in, scheduling, idempotent expansion, crash and restart, concurrent drains, progress
and report, calendar drafts, WeChat mass-send quota, and the CLI.

The platforms are RecordingSenders here (tests/broadcasts/test_broadcast_platforms.py runs the real server
against the fake Telegram and WeChat APIs). Nothing asserts timing.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.support import fake_wechat as fw
from bench.support import wechat_payloads as wx
from bot.channels.wechat import mass as mass_api_call
from bot.channels.wechat.client import DatabaseTokenStore, WeChatClient
from bot.channels.wechat.mass import WeChatMassSender
from handlers.broadcasts import audience as aud
from handlers.broadcasts import calendar, expansion, jobs, report_text, service, wechat_mass
from handlers.broadcasts.audience import Audience
from handlers.broadcasts.chat import parse_when, split_audience
from handlers.broadcasts.config import BroadcastSettings
from handlers.broadcasts.models import (
    Broadcast,
    BroadcastStatus,
    CalendarDraft,
    NoticeOptOut,
    ResidentTag,
    WeChatMassReceipt,
)
from handlers.cases.models import Case
from handlers.kernel.context import Services
from handlers.kernel.outbox import DeliveryError, claim, drain
from handlers.kernel.ports import DeliveryMethod
from storage.database import create_engine, session_factory
from storage.models import OutboxMessage, Resident, ResidentIdentity, utcnow
from tests.support.chat import Chat, Clock, Delivered, RecordingSender
from tests.support.cli import run

TZ = ZoneInfo("Asia/Shanghai")
SMALL = BroadcastSettings(batch_size=7)  # several expansion batches even with a few residents


def at_local(clock: Clock, y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> None:
    clock.now = datetime(y, m, d, hh, mm, tzinfo=TZ).astimezone(UTC)


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    n: int,
    *,
    channel: str = "console",
    prefix: str = "u",
    last_inbound: datetime | None = None,
) -> list[int]:
    """``n`` residents with one account each (``{prefix}{i}`` on ``channel``); returns their ids."""
    async with sessions.begin() as session:
        residents = [Resident(display_name=f"{prefix}{i}") for i in range(n)]
        session.add_all(residents)
        await session.flush()
        session.add_all(
            ResidentIdentity(
                channel=channel, external_id=f"{prefix}{i}", resident_id=r.id, last_inbound_at=last_inbound
            )
            for i, r in enumerate(residents)
        )
        return [r.id for r in residents]


async def create(services: Services, text: str = "周六上午社区卫生服务站免费测血压", **kwargs: Any) -> int:
    kwargs.setdefault("audience", Audience())
    kwargs.setdefault("status", BroadcastStatus.SCHEDULED)
    async with services.sessions.begin() as session:
        b = await service.create(
            session, text=text, created_by="chen", source="cli", now=services.clock(), **kwargs
        )
        return b.id


async def job(services: Services, settings: BroadcastSettings = SMALL) -> None:
    await jobs.run(services, settings=settings)


async def rows(services: Services, broadcast_id: int) -> list[OutboxMessage]:
    async with services.sessions() as session:
        return list(
            await session.scalars(
                select(OutboxMessage).where(service.rows_of(session, broadcast_id)).order_by(OutboxMessage.id)
            )
        )


async def broadcast(services: Services, broadcast_id: int) -> Broadcast:
    async with services.sessions() as session:
        b = await session.get(Broadcast, broadcast_id)
        assert b is not None
        return b


def got(delivered: list[Delivered], needle: str) -> Counter[str]:
    return Counter(d.recipient for d in delivered if needle in d.text)


async def everything(chat: Chat, settings: BroadcastSettings = SMALL) -> list[Delivered]:
    """Run the job and drain until nothing moves (a broadcast's whole life, and its report)."""
    out: list[Delivered] = []
    for _ in range(10):
        await job(chat.services, settings)
        new = await chat.flush()
        out += new
        if not new:
            await job(chat.services, settings)
            out += await chat.flush()
            break
    return out


# -- parsing ------------------------------------------------------------------------------------------


def test_split_audience_reads_grids_by_code_or_name_tags_and_explicit_everyone(sample: Any) -> None:
    both = (Audience(("G1", "G2"), ("guardians",)), "周六义诊")
    assert split_audience("G1 g2 #guardians 周六义诊", sample) == both
    assert split_audience("第一网格、第二网格 #guardians 周六义诊", sample) == both
    assert split_audience("一网格，2网格，#guardians，周六义诊", sample) == both
    for name in (
        "G1",
        "Ｇ１",
        "第一网格",
        "一网格",
        "1网格",
        "第1网格",
        "第一网格（幸福里北区）",
        "幸福里北区",
    ):
        assert split_audience(f"{name}，明天停水", sample) == (Audience(("G1",), ()), "明天停水"), name
    assert split_audience("＃staff 开会", sample) == (Audience((), ("staff",)), "开会")
    assert split_audience("全体 G9路公交改线", sample) == (Audience(), "G9路公交改线")
    assert split_audience("全体居民：周六义诊，请带好医保卡！", sample) == (
        Audience(),
        "周六义诊，请带好医保卡！",
    )
    assert split_audience("G1", sample) == (Audience(("G1",), ()), "")


@pytest.mark.parametrize(
    ("rest", "key", "shown"),
    [
        ("G9 测试", "bc.unknown_grid", "G1 第一网格"),  # a mistyped grid: refused, the valid ones listed
        ("第九网格 明天停水", "bc.unknown_grid", "G4 第四网格"),
        ("明天停水", "bc.no_audience", "广播 全体 内容"),  # "all" is never the default
        ("G9路公交改线", "bc.no_audience", "G2 第二网格"),
        ("88号楼 明天停水", "bc.unknown_building", "G3 第三网格"),
        ("3号楼 明天停水", "bc.building_audience", "广播 G1 内容"),
        ("全体 G1 明天停水", "bc.everyone_and_more", "全体"),
    ],
)
def test_split_audience_refuses_what_names_no_audience(sample: Any, rest: str, key: str, shown: str) -> None:
    from handlers.broadcasts.audience import AudienceError
    from messages import render

    with pytest.raises(AudienceError) as caught:
        split_audience(rest, sample)
    assert caught.value.key == key
    assert shown in render(caught.value.key, **caught.value.params)


def test_parse_when_uses_the_community_time_zone() -> None:
    now = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    assert parse_when("2026-12-01 09:00", now, TZ) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert parse_when("2026-12-01", now, TZ) == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert parse_when("10:00", now, TZ) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert parse_when("09:00", now, TZ) == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # tomorrow
    assert parse_when("2026-12-01T09:00+00:00", now, TZ) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert parse_when("下周", now, TZ) is None
    assert parse_when("2026-13-01 09:00", now, TZ) is None


def test_every_broadcast_message_key_exists() -> None:
    from messages import catalog

    root = Path(__file__).resolve().parents[2] / "handlers" / "broadcasts"
    used: set[str] = set()
    for path in root.glob("*.py"):
        used |= set(re.findall(r'render\(\s*"([a-z_.0-9]+)"', path.read_text(encoding="utf-8")))
    used |= {f"bc.status.{s}" for s in BroadcastStatus}
    used |= {
        f"bc.reason.{r}" for r in [*service.UNREACHABLE, "opted_out", "cancelled", "bad_request", "other"]
    }
    assert sorted(k for k in used if k not in catalog()) == []


def test_failure_reasons_are_classified() -> None:
    assert service.reason_of("unreachable:blocked") == "blocked"
    assert service.reason_of("403 Forbidden: bot was blocked by the user") == "blocked"
    assert service.reason_of("recipient unreachable (blocked the bot)") == "blocked"
    assert service.reason_of("window_closed") == "window_closed"
    assert service.reason_of("quota") == "cs_quota"
    assert service.reason_of("400 Bad Request: chat not found") == "bad_request"
    assert service.reason_of("opted_out") == "opted_out"
    assert service.reason_of("TimedOut: boom") == "other"


# -- audience -----------------------------------------------------------------------------------------


async def test_audience_everyone_grids_tags_staff_opted_out_blocked_and_several_channels(
    chat: Chat, services: Services
) -> None:
    # Residents get a grid by reporting: 小李 in G1 (3号楼), 小王 in G2 (8号楼); 小张 never reported.
    await chat.send("小李", "3号楼楼道里贴满了小广告")
    await chat.send("小王", "8号楼门口垃圾没人清")
    await chat.send("小张", "你好")
    await chat.send("小赵", "你好")
    await chat.send("小孙", "你好")
    async with services.sessions.begin() as session:
        ids = {
            i.external_id: i.resident_id
            for i in await session.scalars(
                select(ResidentIdentity).where(ResidentIdentity.channel == "console")
            )
        }
        session.add(ResidentTag(resident_id=ids["小张"], tag="volunteers"))
        session.add(NoticeOptOut(resident_id=ids["小赵"], opted_out_at=utcnow()))
        await session.execute(update(Resident).where(Resident.id == ids["小孙"]).values(blocked=True))
        # 小李 also writes on Telegram, more recently than on the console.
        session.add(
            ResidentIdentity(
                channel="telegram",
                external_id="777",
                resident_id=ids["小李"],
                last_inbound_at=services.clock() + timedelta(minutes=5),
            )
        )

    async def resolve(audience: Audience, channels: frozenset[str] | None) -> dict[str, str | None]:
        async with services.sessions() as session:
            batch = await aud.resident_batch(session, audience, 0, 100)
            found = await aud.resident_recipients(session, batch, channels)
            staff = await aud.staff_recipients(session, audience, channels)
        return {r.recipient: r.reason for r in [*found, *staff]}

    everyone = await resolve(Audience(), None)
    assert set(everyone) == {"777", "小王", "小张"}  # 小李 once (Telegram, latest); no 小赵, no 小孙
    console_only = await resolve(Audience(), frozenset({"console"}))
    assert set(console_only) == {"小李", "小王", "小张"}
    telegram_only = await resolve(Audience(), frozenset({"telegram"}))
    assert telegram_only == {"777": None, "小王": "no_channel", "小张": "no_channel"}
    assert set(await resolve(Audience.of(["g1"]), None)) == {"777"}
    assert set(await resolve(Audience.of(["G1", "G2"]), None)) == {"777", "小王"}
    assert set(await resolve(Audience.of(tags=["#volunteers"]), None)) == {"小张"}
    assert set(await resolve(Audience.of(tags=["reporters"]), None)) == {"777", "小王"}
    assert set(await resolve(Audience.of(["G2"], ["reporters"]), None)) == {"小王"}
    staff = await resolve(Audience.of(tags=["staff"]), frozenset({"console"}))
    assert set(staff) == {s.id for s in services.community.config.staff} and "chen" in staff
    assert set(await resolve(Audience.of(["G4"], ["staff"]), frozenset({"console"}))) == {"zhou"}

    async with services.sessions() as session:
        counts = await aud.count(session, Audience())
        assert (counts.residents, counts.staff, counts.opted_out) == (3, 0, 1)
        with pytest.raises(aud.AudienceError) as bad_grid:
            await aud.validate(session, Audience.of(["G9"]))
        assert bad_grid.value.key == "bc.unknown_grid"
        with pytest.raises(aud.AudienceError) as bad_tag:
            await aud.validate(session, Audience.of(tags=["nosuch"]))
        assert "volunteers" in bad_tag.value.params["known"]
        await aud.validate(session, Audience.of(["G1"], ["guardians", "staff", "volunteers"]))


async def test_guardians_are_the_residents_enrolled_in_reminders(chat: Chat, services: Services) -> None:
    from tests.reminders.test_reminders_chat import enrol

    await enrol(chat, "小王", "豆豆", "2026-11-16")
    await chat.send("小李", "你好")
    async with services.sessions() as session:
        batch = await aud.resident_batch(session, Audience.of(tags=["guardians"]), 0, 100)
        found = await aud.resident_recipients(session, batch, None)
    assert [r.recipient for r in found] == ["小王"]


# -- the chat -----------------------------------------------------------------------------------------


async def test_admin_broadcast_needs_confirmation_then_reaches_everyone_once(chat: Chat) -> None:
    for who in ("小李", "小王", "小张"):
        await chat.send(who, "你好")
    out = chat.to(await chat.send("chen", "广播 全体 周六上午社区卫生服务站免费测血压"), "chen")
    assert "广播草稿 #1" in out[0] and "共 3 人" in out[0]
    assert not re.search("小李|小王|小张", out[0])  # counts, never names
    # Nothing goes out without confirmation, however long we wait.
    assert not got(await everything(chat), "免费测血压")
    out = chat.to(await chat.send("chen", "确认发送 1"), "chen")
    assert "正在发送" in out[0]
    delivered = await everything(chat)
    assert got(delivered, "免费测血压") == {"小李": 1, "小王": 1, "小张": 1}
    assert all("退订通知" in d.text for d in delivered if d.recipient != "chen")
    report = chat.to(delivered, "chen")
    assert any("发送完毕" in t and "送达 3 人" in t for t in report), report
    # Again: nothing more, ever.
    assert not await everything(chat)
    assert chat.to(await chat.send("chen", "确认发送 1"), "chen")[0].startswith("广播 #1 现在是")


async def test_the_drafts_scheduling_example_is_tomorrow_and_works_as_typed(chat: Chat) -> None:
    # The example in the draft is copied as it stands by admins: it must be a time still to come.
    await chat.send("小李", "你好")
    out = chat.to(await chat.send("chen", "广播 全体 周六义诊"), "chen")
    local = chat.clock.now.astimezone(ZoneInfo("Asia/Shanghai"))
    example = f"定时发送 1 {(local + timedelta(days=1)):%Y-%m-%d} 09:00"
    assert example in out[0], out
    out = chat.to(await chat.send("chen", example), "chen")
    assert any("#1" in t and "09:00" in t for t in out) and not any("已过" in t for t in out), out


async def test_confirm_without_a_number_takes_the_admins_one_open_draft(chat: Chat) -> None:
    # On WeChat a draft has no buttons: admins type 确认发送 / 取消广播 and mean the draft just shown.
    await chat.send("小李", "3号楼楼道里贴满了小广告")
    await chat.flush()
    await chat.send("chen", "广播 全体 周六上午义诊")
    out = chat.to(await chat.send("chen", "确认发送"), "chen")
    assert any("广播 #1 已确认" in t for t in out), out
    await chat.send("chen", "广播 全体 第二条")
    await chat.send("chen", "广播 全体 第三条")
    assert "请写明广播编号" in chat.to(await chat.send("chen", "取消广播"), "chen")[0]  # which of two?
    out = chat.to(await chat.send("chen", "取消广播 3"), "chen")
    assert any("#3" in t for t in out), out
    out = chat.to(await chat.send("chen", "取消广播"), "chen")  # one draft left: #2
    assert any("#2" in t for t in out), out


async def test_buttons_grids_tags_and_refusals(chat: Chat, services: Services) -> None:
    await chat.send("小李", "3号楼楼道里贴满了小广告")
    await chat.send("小王", "8号楼门口垃圾没人清")
    await chat.flush()
    # A worker may not broadcast; a resident's message beginning with 广播 is a report, not a command.
    assert "只有社区工作人员" in chat.to(await chat.send("zhang", "广播 大家好"), "zhang")[0]
    out = chat.to(await chat.send("小张", "广播站旁边垃圾很多"), "小张")
    assert not any("广播草稿" in t for t in out)
    out = chat.to(await chat.send("chen", "广播 全体 大家好"), "chen")
    assert "全体居民" in out[0] and "共 3 人" in out[0]  # 小李, 小王, 小张
    await chat.send("chen", "取消广播 1")
    out = chat.to(await chat.send("chen", "广播 #nosuch 大家好"), "chen")
    assert "没有标签“nosuch”" in out[0]
    out = chat.to(await chat.send("chen", "广播 G1 3号楼明天停水"), "chen")
    assert "第一网格（幸福里北区）（G1）的居民" in out[0] and "共 1 人" in out[0]
    # The button does what 确认发送 does.
    await chat.conversation.act(_inbound("chen"), "bcok::2")
    delivered = await everything(chat)
    assert got(delivered, "明天停水") == {"小李": 1}
    # A resident pressing an admin's button is refused.
    await chat.conversation.act(_inbound("小李"), "bcok::1")
    assert "仅供社区工作人员" in chat.to(await chat.flush(), "小李")[0]
    # Cancelling before it is sent sends nothing.
    await chat.send("chen", "广播 #staff 下午三点开会")
    await chat.conversation.act(_inbound("chen"), "bccancel::3")
    assert not got(await everything(chat), "开会")
    assert (await broadcast(services, 3)).status == BroadcastStatus.CANCELLED


def _inbound(who: str) -> Any:
    from handlers.kernel.inbound import Inbound

    return Inbound(channel="console", sender=who)


async def test_scheduled_broadcast_goes_out_at_its_time(chat: Chat, clock: Clock) -> None:
    await chat.send("小李", "你好")
    await chat.send("chen", "广播 全体 明天上午义诊")
    assert "看不懂" in chat.to(await chat.send("chen", "定时发送 1 明天"), "chen")[0]
    assert "已经过去" in chat.to(await chat.send("chen", "定时发送 1 2026-11-23 08:00"), "chen")[0]
    out = chat.to(await chat.send("chen", "定时发送 1 2026-11-24 08:00"), "chen")
    assert "2026-11-24 08:00" in out[0]
    assert not got(await everything(chat), "义诊")
    at_local(clock, 2026, 11, 24, 7, 59)
    assert not got(await everything(chat), "义诊")
    at_local(clock, 2026, 11, 24, 8, 0)
    assert got(await everything(chat), "义诊") == {"小李": 1}


async def test_opt_out_keeps_case_updates_and_opt_in_restores_notices(chat: Chat) -> None:
    out = chat.to(await chat.send("小李", "3号楼楼道里贴满了小广告"), "小李")
    number = int(re.search(r"#(\d+)", out[0]).group(1))  # type: ignore[union-attr]
    await chat.send("小王", "你好")
    assert "已为您退订社区通知" in chat.to(await chat.send("小李", "退订通知"), "小李")[0]
    assert "已退订" in chat.to(await chat.send("小李", "退订通知"), "小李")[0]
    # Case updates still arrive.
    await chat.send("zhang", f"接单 {number}")
    await chat.flush()
    out = await chat.send("zhang", f"完成 {number} 已清理干净")
    assert any(f"#{number}" in t for t in chat.to(out, "小李"))
    # Notices do not.
    out = chat.to(await chat.send("chen", "广播 全体 通知一"), "chen")
    assert "共 1 人" in out[0] and "另有 1 人已退订" in out[0]
    await chat.send("chen", "确认发送 1")
    assert got(await everything(chat), "通知一") == {"小王": 1}
    # Back in.
    assert "已为您恢复" in chat.to(await chat.send("小李", "订阅通知"), "小李")[0]
    await chat.send("chen", "广播 全体 通知二")
    await chat.send("chen", "确认发送 2")
    assert got(await everything(chat), "通知二") == {"小王": 1, "小李": 1}


async def test_notice_opt_out_and_reminder_opt_out_do_not_collide(chat: Chat, services: Services) -> None:
    from handlers.reminders.models import Guardianship
    from tests.reminders.test_reminders_chat import enrol

    await enrol(chat, "小王", "豆豆", "2026-11-16")
    await chat.send("小王", "退订通知")  # notices only: the child's reminders stay
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Guardianship)) == 1
        assert await session.scalar(select(func.count()).select_from(NoticeOptOut)) == 1
    await chat.send("小王", "订阅通知")
    out = chat.to(await chat.send("小王", "退订"), "小王")  # reminders only: notices stay
    assert not any("社区通知" in t for t in out)
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Guardianship)) == 0
        assert await session.scalar(select(func.count()).select_from(NoticeOptOut)) == 0


async def test_opting_out_while_a_broadcast_is_sending_withdraws_the_pending_message(
    chat: Chat, services: Services
) -> None:
    await seed(services.sessions, 3)
    await chat.send("小李", "你好")
    bid = await create(services)
    await job(services)  # expanded, nothing sent yet
    await chat.send("小李", "退订通知")
    delivered = await everything(chat)
    assert "小李" not in got(delivered, "免费测血压")
    report = (await broadcast(services, bid)).report
    assert report["by_reason"] == {"opted_out": 1} and report["sent"] == 3


# -- expansion: idempotent, resumable, concurrent ----------------------------------------------------


async def test_expansion_twice_adds_nothing(services: Services) -> None:
    ids = await seed(services.sessions, 30)
    bid = await create(services)
    kwargs: dict[str, Any] = {"channels": None, "community": "幸福社区", "clock": services.clock}
    assert await expansion.expand(services.sessions, bid, settings=SMALL, **kwargs)
    first = await rows(services, bid)
    assert len(first) == len(ids) == (await broadcast(services, bid)).total
    # Run it again from the start, as a process would after losing its progress.
    async with services.sessions.begin() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == bid)
            .values(expanded_at=None, expand_cursor=0, expand_lease=None)
        )
    assert await expansion.expand(services.sessions, bid, settings=SMALL, **kwargs)
    again = await rows(services, bid)
    assert [r.id for r in again] == [r.id for r in first]
    assert {r.dedup_key for r in again} == {f"bc:{bid}:r{i}" for i in ids}
    assert {r.priority for r in again} == {-10}


async def test_crash_half_way_then_restart_completes_with_no_duplicates_and_none_skipped(
    services: Services, clock: Clock, engine: Any
) -> None:
    ids = await seed(services.sessions, 40)
    bid = await create(services)
    kwargs: dict[str, Any] = {"channels": None, "community": "幸福社区", "clock": services.clock}
    # Process 1 expands two batches of seven, sends ten messages, claims five more and dies.
    assert not await expansion.expand(services.sessions, bid, settings=SMALL, max_batches=2, **kwargs)
    assert len(await rows(services, bid)) == 14
    first = RecordingSender("console")
    await drain(services.sessions, first, services.clock, limit=10)
    lost = await claim(services.sessions, "console", clock())
    assert len(lost) == 4  # claimed, never sent: the process died here
    # Process 2: a new engine and services; the expansion lease and the claims lapse, then it finishes.
    clock.advance(seconds=130)
    engine2 = create_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        restarted = Services(
            sessions=session_factory(engine2),
            community=services.community,
            channels=services.channels,
            clock=clock,
        )
        second = RecordingSender("console")
        for _ in range(20):
            await job(restarted)
            if not await drain(restarted.sessions, second, clock, limit=100):
                await job(restarted)
                if (await broadcast(restarted, bid)).status == BroadcastStatus.DONE:
                    break
    finally:
        await engine2.dispose()
    received = Counter(d.recipient for d in [*first.delivered, *second.delivered])
    assert received == Counter({f"u{i}": 1 for i in range(len(ids))})
    done = await broadcast(services, bid)
    assert (done.status, done.total, done.sent, done.failed) == (BroadcastStatus.DONE, 40, 40, 0)


async def test_two_drains_share_the_work_without_duplicates(services: Services, engine: Any) -> None:
    await seed(services.sessions, 120)
    bid = await create(services)
    await job(services)
    url = engine.url.render_as_string(hide_password=False)
    engines = [create_engine(url), create_engine(url)]  # two "processes"
    try:
        senders = [SlowSender("console"), SlowSender("console")]

        async def worker(sessions: async_sessionmaker[AsyncSession], sender: SlowSender) -> None:
            while await drain(sessions, sender, services.clock, limit=7):
                pass

        await asyncio.gather(*(worker(session_factory(e), s) for e, s in zip(engines, senders, strict=True)))
    finally:
        for e in engines:
            await e.dispose()
    both = [d.recipient for s in senders for d in s.delivered]
    assert len(both) == len(set(both)) == 120
    assert all(s.delivered for s in senders)  # both did some of it
    await job(services)
    assert (await broadcast(services, bid)).status == BroadcastStatus.DONE


@dataclass
class SlowSender(RecordingSender):
    """Yields while "sending", so two drains interleave."""

    async def send(self, message: OutboxMessage) -> None:
        await asyncio.sleep(0.001)
        await super().send(message)


# -- delivery outcomes, progress and report -----------------------------------------------------------


@dataclass
class PlatformSender(RecordingSender):
    """Refuses some recipients as a platform would: 403 (blocked), or 429 the first ``limited`` times."""

    blocked: set[str] = field(default_factory=set)
    limited: dict[str, int] = field(default_factory=dict)
    attempts: Counter[str] = field(default_factory=Counter)

    async def send(self, message: OutboxMessage) -> None:
        self.attempts[message.recipient] += 1
        if message.recipient in self.blocked:
            raise DeliveryError("403 Forbidden: bot was blocked by the user", permanent=True)
        if self.limited.get(message.recipient, 0) > 0:
            self.limited[message.recipient] -= 1
            raise DeliveryError("429 retry after 3s", retry_after=3)
        await super().send(message)


async def test_progress_report_blocked_unreachable_and_429(
    chat: Chat, services: Services, clock: Clock
) -> None:
    # Residents on Telegram (delivered by the PlatformSender below); the admin on the console.
    both = Services(services.sessions, services.community, frozenset({"console", "telegram"}), clock)
    ids = await seed(services.sessions, 10, channel="telegram")
    async with services.sessions.begin() as session:  # u9 blocked the bot earlier (marked by the channel)
        await session.execute(
            update(ResidentIdentity)
            .where(ResidentIdentity.external_id == "u9")
            .values(unreachable_since=clock())
        )
    await seed(services.sessions, 2, channel="wecom", prefix="w")  # a channel this deployment does not run
    await chat.send("chen", "广播 全体 冬季防火")
    await chat.send("chen", "确认发送 1")
    await job(both)
    sender = PlatformSender("telegram", blocked={"u3"}, limited={"u5": 2})
    await drain(services.sessions, sender, clock, limit=5)
    async with services.sessions() as session:
        p = await service.progress(session, 1, clock())
    # u0-u4 tried (u3 blocked the bot: 403); u9 (marked earlier), w0, w1 (no channel) failed at once.
    assert (p.total, p.sent, p.failed, p.pending) == (12, 4, 4, 4)
    assert p.by_reason == {"blocked": 2, "no_channel": 2} and p.unreachable == 4
    assert "66%" in report_text.progress_text(1, p)  # 8 of 12 settled
    # Progress goes to the admin (counts only), a minute after the start, then at most every minute.
    await job(both, BroadcastSettings(progress_seconds=60))
    assert not chat.to(await chat.flush(), "chen")
    clock.advance(seconds=61)
    await job(both, BroadcastSettings(progress_seconds=60))
    progress_messages = chat.to(await chat.flush(), "chen")
    assert len(progress_messages) == 1
    assert "已送达 4" in progress_messages[0] and "待发送 4" in progress_messages[0]
    assert "冬季防火" not in progress_messages[0]
    await job(both, BroadcastSettings(progress_seconds=60))
    assert not chat.to(await chat.flush(), "chen")
    # 429s are rescheduled, not dropped: u5 comes back after retry_after, twice, then goes.
    for _ in range(5):
        clock.advance(seconds=4)
        await drain(services.sessions, sender, clock, limit=50)
    assert sender.attempts["u5"] == 3
    await job(both)
    report = chat.to(await chat.flush(), "chen")
    assert len(report) == 1
    assert "送达 8 人" in report[0] and "未送达 4 人" in report[0] and "已屏蔽或停用机器人 2 人" in report[0]
    done = await broadcast(services, 1)
    assert done.status == BroadcastStatus.DONE
    assert done.report["by_reason"] == {"blocked": 2, "no_channel": 2}
    assert done.report["by_channel"]["telegram"] == {"sent": 8, "failed": 2}
    assert Counter(d.recipient for d in sender.delivered) == Counter(
        {f"u{i}": 1 for i in range(len(ids)) if i not in (3, 9)}
    )


async def test_replies_go_before_a_broadcast_backlog(chat: Chat, services: Services) -> None:
    await seed(services.sessions, 30)
    await create(services)
    await job(services)
    await chat.conversation.handle(_inbound("小新"))  # a reply to a resident, written after the backlog
    rows_ = await claim(services.sessions, "console", services.clock(), limit=3)
    assert rows_[0].recipient == "小新" and rows_[0].priority == 0
    assert [r.priority for r in rows_[1:]] == [-10, -10]


async def test_stopping_a_broadcast_being_sent(chat: Chat, services: Services) -> None:
    await seed(services.sessions, 20)
    await chat.send("chen", "广播 全体 停水通知")
    await chat.send("chen", "确认发送 1")
    await job(services)
    sender = RecordingSender("console")
    await drain(services.sessions, sender, services.clock, limit=5)
    out = chat.to(await chat.send("chen", "取消广播 1"), "chen")
    assert "已停止" in out[0] and "撤回未发出的 15 条" in out[0]
    await drain(services.sessions, sender, services.clock, limit=100)
    assert len(got(sender.delivered, "停水通知")) == 5
    b = await broadcast(services, 1)
    assert b.status == BroadcastStatus.CANCELLED and b.report["by_reason"] == {"cancelled": 15}


# -- the outreach calendar ----------------------------------------------------------------------------


def test_calendar_file_resolves_every_entry_with_a_source() -> None:
    entries = calendar.load()
    keys = {e.key for e in entries}
    assert {
        "patriotic_health_month",
        "vaccination_day",
        "spring_pest_control",
        "autumn_pest_control",
        "summer_mosquito_control",
        "national_hypertension_day",
        "diabetes_day",
    } <= keys
    for entry in entries:
        assert entry.src and entry.advice
        for year in (2026, 2027, 2028):
            entry.start(year)
    starts = {e.key: e.start(2026) for e in entries}
    assert starts["vaccination_day"].isoformat() == "2026-04-25"
    assert starts["patriotic_health_month"].isoformat() == "2026-04-01"
    assert starts["leprosy_day"].isoformat() == "2026-01-25"  # last Sunday of January
    assert starts["copd_day"].isoformat() == "2026-11-18"  # third Wednesday of November
    notice = next(e for e in entries if e.key == "vaccination_day").notice(2026)
    assert notice.startswith("4月25日是全国儿童预防接种日。")


async def test_calendar_drafts_once_and_sends_only_after_approval(
    chat: Chat, services: Services, clock: Clock
) -> None:
    await seed(services.sessions, 3)
    at_local(clock, 2026, 4, 21, 10)  # 全国儿童预防接种日 (4/25) and 全国疟疾日 (4/26) are within 5 days
    made = await calendar.draft_due(services)
    assert len(made) == 2
    assert await calendar.draft_due(services) == []  # made once
    clock.advance(hours=1)
    assert await calendar.draft_due(services) == []
    to_admin = chat.to(await chat.flush(), "chen")
    assert len(to_admin) == 2 and "4月25日是全国儿童预防接种日" in to_admin[0] and "批准 1" in to_admin[0]
    # Waiting sends nothing: drafts need approval.
    for _ in range(3):
        clock.advance(days=1)
        delivered = await everything(chat)
        assert not got(delivered, "预防接种") and not got(delivered, "疟疾")
    out = chat.to(await chat.send("chen", "修改 1 4月25日是全国儿童预防接种日，请查看孩子的接种证。"), "chen")
    assert "已修改" in out[0]
    out = chat.to(await chat.send("chen", "批准 1"), "chen")
    assert "2026-04-25 09:00" in out[0]
    assert "今年不再提醒" in chat.to(await chat.send("chen", "跳过 2"), "chen")[0]
    assert not got(await everything(chat), "接种证")
    at_local(clock, 2026, 4, 25, 8, 59)
    assert not got(await everything(chat), "接种证")
    at_local(clock, 2026, 4, 25, 9)
    delivered = await everything(chat)
    assert got(delivered, "请查看孩子的接种证") == {"u0": 1, "u1": 1, "u2": 1}
    assert not got(delivered, "疟疾")
    async with services.sessions() as session:
        drafts = {d.key: d.status for d in await session.scalars(select(CalendarDraft))}
    assert drafts == {"vaccination_day": "approved", "malaria_day": "skipped"}


# -- WeChat mass send ---------------------------------------------------------------------------------


@pytest.fixture
async def mass_api(services: Services) -> AsyncIterator[tuple[fw.FakeWeChat, WeChatClient]]:
    """The fake WeChat API on 127.0.0.1 and our own client for it (mass send goes over real HTTP)."""
    fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET).start()
    client = WeChatClient(wx.APP_ID, wx.APP_SECRET, fake.url, DatabaseTokenStore(services.sessions))
    try:
        yield fake, client
    finally:
        await client.close()
        fake.stop()


async def test_wechat_mass_send_outside_the_window_with_the_monthly_quota(
    services: Services, clock: Clock, mass_api: tuple[fw.FakeWeChat, WeChatClient]
) -> None:
    fake, client = mass_api
    month = wechat_mass.month_of(clock())
    old = clock() - timedelta(days=5)
    await seed(services.sessions, 4, channel="wechat", prefix="o", last_inbound=old)  # outside 48 h
    await seed(services.sessions, 2, channel="wechat", prefix="n", last_inbound=clock() - timedelta(hours=2))
    async with services.sessions.begin() as session:
        session.add(WeChatMassReceipt(openid="o3", month=month, count=4))  # quota spent this month
        note = await wechat_mass.quota_note(session, Audience(), clock())
    assert "约 4 人" in note and "1 人本月次数已用完" in note
    bid = await create(services, "垃圾分类新规", wechat_mass=True)
    await expansion.expand(
        services.sessions, bid, channels=frozenset({"wechat"}), community="幸福社区", clock=clock
    )
    by_way = Counter((r.channel, r.method) for r in await rows(services, bid))
    assert by_way == {("wechat", "mass"): 4, ("wechat", "direct"): 2}  # open window: customer service
    assert await wechat_mass.drain(services.sessions, WeChatMassSender(client), clock) == 3
    (call,) = fake.sent(fw.MASS)
    assert sorted(call.body["touser"]) == ["o0", "o1", "o2"]
    assert "垃圾分类新规" in call.body["text"]["content"]
    assert fake.mass_received == {"o0": 1, "o1": 1, "o2": 1}
    async with services.sessions() as session:
        counts = dict(
            (await session.execute(select(WeChatMassReceipt.openid, WeChatMassReceipt.count))).all()
        )
        p = await service.progress(session, bid, clock())
    assert counts == {"o0": 1, "o1": 1, "o2": 1, "o3": 4}
    assert p.by_reason == {"mass_quota": 1} and p.sent == 3
    # A process without a mass-send client hands waiting mass rows to the ordinary WeChat path.
    bid2 = await create(services, "第二条", wechat_mass=True)
    await expansion.expand(
        services.sessions, bid2, channels=frozenset({"wechat"}), community="幸福社区", clock=clock
    )
    await job(Services(services.sessions, services.community, frozenset({"wechat"}), clock))
    assert {(r.channel, r.method) for r in await rows(services, bid2)} == {("wechat", "direct")}


async def test_wechat_mass_send_after_a_crash_is_not_sent_twice(
    services: Services, clock: Clock, mass_api: tuple[fw.FakeWeChat, WeChatClient]
) -> None:
    fake, client = mass_api
    await seed(services.sessions, 3, channel="wechat", prefix="o", last_inbound=clock() - timedelta(days=5))
    bid = await create(services, "停电通知", wechat_mass=True)
    await expansion.expand(
        services.sessions, bid, channels=frozenset({"wechat"}), community="幸福社区", clock=clock
    )
    # The process dies after WeChat accepted the batch and before the rows were marked: the call it
    # made is repeated here exactly as drain makes it, then its rows are left claimed.
    claimed = await claim(services.sessions, "wechat", clock(), limit=10, method=DeliveryMethod.MASS)
    first = {
        "touser": [r.recipient for r in claimed],
        "msgtype": "text",
        "text": {"content": claimed[0].text},
        "send_ignore_reprint": 0,
        "clientmsgid": f"bc{claimed[0].id}-{claimed[-1].id}-3",
    }
    await client.call(mass_api_call.PATH, first)
    clock.advance(seconds=120)
    assert await wechat_mass.drain(services.sessions, WeChatMassSender(client), clock) == 3
    assert [c.answer["errcode"] for c in fake.calls if c.path == fw.MASS] == [0, mass_api_call.DUPLICATE]
    assert fake.mass_received == {"o0": 1, "o1": 1, "o2": 1}  # each resident got it once
    async with services.sessions() as session:
        counts = dict(
            (await session.execute(select(WeChatMassReceipt.openid, WeChatMassReceipt.count))).all()
        )
    assert counts == {"o0": 1, "o1": 1, "o2": 1}
    assert {r.status for r in await rows(services, bid)} == {"sent"}


# -- the command line (SQLite, subprocess) ------------------------------------------------------------


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


async def test_cli_dry_run_confirmation_queue_and_list(tmp_path: Path) -> None:
    env = _cli_env(tmp_path)
    url = env["OUTREACH_DATABASE_URL"]
    assert run(["broadcasts"], env=env).returncode == 0  # creates the schema
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        await seed(sessions, 5)
        dry = run(["broadcast", "--text", "周六义诊", "--dry-run"], env=env)
        assert dry.returncode == 0, dry.stderr.decode()
        assert "共 5 人" in dry.stdout.decode() and "试运行" in dry.stdout.decode()
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
        tagged = run(["tags", "add", "volunteers", "R1", "3"], env=env)
        assert tagged.returncode == 0 and "新加 2 人" in tagged.stdout.decode(), tagged.stderr.decode()
        assert run(["tags", "add", "staff", "R1"], env=env).returncode == 2  # a built-in tag
        assert run(["tags", "add", "volunteers", "R99"], env=env).returncode == 2
        dry = run(["broadcast", "--text", "周日植树", "--tag", "volunteers", "--dry-run"], env=env)
        assert "标签 #volunteers，共 2 人" in dry.stdout.decode(), dry.stdout.decode()
        refused = run(["broadcast", "--text", "周六义诊"], env=env)  # no terminal to confirm on
        assert refused.returncode == 2 and "--yes" in refused.stderr.decode()
        bad = run(["broadcast", "--text", "周六义诊", "--grid", "G9", "--yes"], env=env)
        assert bad.returncode == 2 and "G9" in bad.stderr.decode()
        notice = tmp_path / "notice.txt"
        notice.write_text("本周六上午9点\n社区卫生服务站免费测血压\n", encoding="utf-8")
        queued = run(["broadcast", "--file", str(notice), "--yes", "--no-wait"], env=env)
        assert queued.returncode == 0, queued.stderr.decode()
        async with sessions() as session:
            outbox = list(
                await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "broadcast"))
            )
        assert len(outbox) == 5 and all("免费测血压" in r.text for r in outbox)
        later = run(["broadcast", "--text", "元旦安排", "--at", "2030-01-01 09:00", "--yes"], env=env)
        assert later.returncode == 0 and "2030-01-01 09:00" in later.stdout.decode()
        listed = [
            line for line in run(["broadcasts", "--format", "json"], env=env).stdout.decode().splitlines()
        ]
        import json

        items = [json.loads(line) for line in listed]
        assert [(i["id"], i["status"], i["total"]) for i in items] == [(2, "scheduled", 0), (1, "sending", 5)]
        cancelled = run(["broadcasts", "--cancel", "2"], env=env)
        assert cancelled.returncode == 0, cancelled.stderr.decode()
        shown = json.loads(run(["broadcasts", "--show", "1", "--format", "json"], env=env).stdout)
        assert shown["progress"]["pending"] == 5
    finally:
        await engine.dispose()


# -- the audience as typed (issue #12 point 2) and a resident's grid (point 8) --------------------------


async def test_mistyped_or_missing_audience_is_refused_and_sends_nothing(
    chat: Chat, services: Services
) -> None:
    for who in ("小李", "小王"):
        await chat.send(who, "你好")
    for typed in ("广播 G9 测试", "广播 第九网格 明天停水", "广播 明天停水", "广播 88号楼 明天停水"):
        out = chat.to(await chat.send("chen", typed), "chen")
        assert len(out) == 1 and "广播草稿" not in out[0], typed
        assert "G1 第一网格（幸福里北区）" in out[0], typed  # the valid grids are listed
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
    assert not await everything(chat)


async def test_grid_named_in_words_or_with_a_comma_reaches_that_grid_only(chat: Chat) -> None:
    await chat.send("小李", "3号楼楼道里贴满了小广告")  # G1
    await chat.send("小王", "8号楼门口垃圾没人清")  # G2
    await chat.flush()
    for n, typed in enumerate(("广播 第一网格 明天停水", "广播 G1，明天停水", "广播 一网格 明天停水"), 1):
        out = chat.to(await chat.send("chen", typed), "chen")
        assert f"广播草稿 #{n}" in out[0], typed
        assert "发送对象：第一网格（幸福里北区）（G1）的居民，共 1 人" in out[0], typed
        assert "明天停水" in out[0] and "G1，" not in out[0] and "网格 明天" not in out[0], typed
        await chat.send("chen", f"取消广播 {n}")
    await chat.send("chen", "广播 第一网格 明天停水")
    await chat.send("chen", "确认发送")
    delivered = await everything(chat)
    assert got(delivered, "明天停水") == {"小李": 1}
    assert next(d.text for d in delivered if d.recipient == "小李").split("\n")[1] == "明天停水"


async def test_explicit_everyone_shows_the_audience_in_words_and_a_count(chat: Chat) -> None:
    for who in ("小李", "小王", "小张"):
        await chat.send(who, "你好")
    out = chat.to(await chat.send("chen", "广播 全体 周六义诊，请带好医保卡！"), "chen")
    assert "发送对象：全体居民，共 3 人" in out[0]
    assert "周六义诊，请带好医保卡！" in out[0]  # the text as written, full-width punctuation kept


async def test_a_residents_grid_is_where_they_live_not_their_last_report(chat: Chat) -> None:
    await chat.send("小李", "3号楼楼道里贴满了小广告")  # located: G1
    await chat.send("小李", "这里的垃圾桶满了好几天没人清")  # no location: still asking where
    await chat.send("小李", "不知道")  # triaged with no location
    await chat.send("小王", "8号楼门口垃圾没人清")  # G2
    await chat.flush()
    out = chat.to(await chat.send("chen", "广播 G1 明天停水"), "chen")
    assert "共 1 人" in out[0]
    await chat.send("chen", "确认发送")
    assert got(await everything(chat), "明天停水") == {"小李": 1}


async def test_a_resident_who_says_where_they_live_gets_that_grids_notices(chat: Chat) -> None:
    out = chat.to(await chat.send("小李", "住址 3号楼"), "小李")
    assert "3号楼" in out[0] and "第一网格" in out[0]
    await chat.send("小李", "8号楼门口垃圾没人清")  # a report elsewhere does not move them
    await chat.send("小王", "我家在10号楼")  # G2
    assert "没有找到" in chat.to(await chat.send("小张", "住址 88号楼"), "小张")[0]
    # A report that begins the same way is a report.
    await chat.send("小赵", "我家在5号楼，楼道里全是小广告")
    await chat.flush()
    async with chat.services.sessions() as session:
        reported = await session.scalar(select(func.count()).select_from(Case))
    assert reported == 2
    out = chat.to(await chat.send("chen", "广播 G1 明天停水"), "chen")
    assert "共 2 人" in out[0]  # 小李 (told us) and 小赵 (reported at 5号楼)
    await chat.send("chen", "确认发送")
    assert got(await everything(chat), "明天停水") == {"小李": 1, "小赵": 1}


async def test_a_broadcast_to_nobody_is_refused_not_drafted(chat: Chat) -> None:
    await chat.send("小李", "你好")  # one resident, in no grid and with no tag
    out = "\n".join(chat.to(await chat.send("chen", "广播 #guardians 周六疫苗接种"), "chen"))
    assert "共 0 人" in out and "没有起草" in out and "广播草稿" not in out
    out = "\n".join(chat.to(await chat.send("chen", "广播 G4 明天停水"), "chen"))
    assert "没有起草" in out and "第四网格" in out
    async with chat.services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
    out = "\n".join(chat.to(await chat.send("chen", "广播 全体 明天停水"), "chen"))
    assert "广播草稿 #1" in out and "共 1 人" in out
