"""Reminders through the real conversation (SQLite and PostgreSQL): enrolment with consent first, refusal,
several children, a second guardian, dose replies, postponement, 退订, quiet hours, and follow-ups that
only health staff can enrol and that never name a disease to the resident."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from handlers.kernel.context import Services
from handlers.reminders.config import ReminderSettings
from handlers.reminders.jobs import send_due
from handlers.reminders.models import (
    Child,
    Consent,
    DoseRecord,
    FollowupEnrolment,
    FollowupRecord,
    Guardianship,
    Reminder,
)
from storage.models import Dialog, Resident, ResidentIdentity, Staff, StaffIdentity
from tests.support.chat import Chat, Clock

HEAD = "【幸福社区卫生服务站】您有一条健康服务提醒"
DISEASE_WORDS = ("高血压", "糖尿病", "精神", "孕", "结核", "艾滋", "体检", "慢性")
SETTINGS = ReminderSettings()
TZ = ZoneInfo("Asia/Shanghai")


async def count(chat: Chat, model: type, *where: object) -> int:
    async with chat.services.sessions() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int(await session.scalar(query) or 0)


async def resident_id(chat: Chat, who: str) -> int:
    async with chat.services.sessions() as session:
        identity = await session.get(ResidentIdentity, ("console", who))
        assert identity is not None
        return identity.resident_id


async def add_health_staff(services: Services, staff_id: str = "doc", name: str = "刘医生") -> None:
    async with services.sessions.begin() as session:
        session.add(Staff(id=staff_id, name=name, role="health", active=True))
        await session.flush()
        session.add(
            StaffIdentity(channel="console", external_id=staff_id, staff_id=staff_id, source="invite")
        )


def at_local(clock: Clock, year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> None:
    """Set the test clock to a wall-clock time in the community's time zone."""
    clock.now = datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


async def run_job(chat: Chat) -> list[str]:
    await send_due(chat.services, SETTINGS)
    return [m.text for m in await chat.flush()]


async def enrol(
    chat: Chat, who: str, nickname: str, birth: str, doses: str | None = None
) -> tuple[list[str], str | None]:
    """The whole enrolment dialog; returns the summary lines and the second guardian's code."""
    out = chat.to(await chat.send(who, "疫苗提醒"), who)
    assert "同意" in out[0]
    assert "小名" in chat.to(await chat.send(who, "同意"), who)[0]
    assert "出生日期" in chat.to(await chat.send(who, nickname), who)[0]
    asked = chat.to(await chat.send(who, birth), who)
    assert "跳过" in asked[0]
    if doses:
        recorded = chat.to(await chat.send(who, doses), who)
        assert "已记录" in recorded[0], recorded
    summary = chat.to(await chat.send(who, "完成"), who)
    code = re.search(r"加入 ([A-Z0-9]{8})", summary[0])
    return summary, code.group(1) if code else None


# -- enrolment ---------------------------------------------------------------------------------------


async def test_enrolment_asks_consent_first_then_child_birth_and_doses(chat: Chat) -> None:
    out = chat.to(await chat.send("小王", "疫苗提醒"), "小王")
    assert len(out) == 1 and "敏感个人信息" in out[0] and "回复“同意”" in out[0]
    assert await count(chat, Consent) == 0 and await count(chat, Child) == 0

    await chat.send("小王", "同意")
    async with chat.services.sessions() as session:
        consent = (await session.scalars(select(Consent))).one()
    assert (consent.programme, consent.text_version, consent.channel) == (
        "child_vaccination",
        "v1",
        "console",
    )
    assert consent.withdrawn_at is None

    await chat.send("小王", "豆豆")
    out = chat.to(await chat.send("小王", "2026年11月16日"), "小王")
    assert "乙肝疫苗第1剂" in out[0] and "卡介苗" in out[0]  # what should already be on the 接种证
    out = chat.to(await chat.send("小王", "乙肝1 2026-11-16，卡介苗 20261116"), "小王")
    assert "已记录豆豆" in out[0] and "乙肝疫苗第1剂（2026-11-16）" in out[0]
    out = chat.to(await chat.send("小王", "完成"), "小王")
    assert "豆豆的接种提醒已开通" in out[0]
    assert "12月16日" in out[0] and "乙肝疫苗第2剂" in out[0]
    assert re.search(r"加入 [A-Z0-9]{8}", out[0])

    async with chat.services.sessions() as session:
        child = (await session.scalars(select(Child))).one()
        assert (child.nickname, child.birth_date) == ("豆豆", date(2026, 11, 16))
        doses = {(d.vaccine, d.dose, d.given_on) for d in await session.scalars(select(DoseRecord))}
        assert doses == {("HepB", 1, date(2026, 11, 16)), ("BCG", 1, date(2026, 11, 16))}
        first = sorted(
            (r.for_date, r.offset_days)
            for r in await session.scalars(select(Reminder).where(Reminder.for_date == date(2026, 12, 16)))
        )
        assert first == [(date(2026, 12, 16), o) for o in (-7, -1, 0, 7, 30)]
        assert await session.get(Dialog, ("console", "小王")) is None


async def test_refusing_consent_stores_nothing(chat: Chat) -> None:
    await chat.send("小王", "登记孩子")
    out = chat.to(await chat.send("小王", "不用了"), "小王")
    assert "没有保存任何信息" in out[0]
    assert await count(chat, Consent) == 0 and await count(chat, Child) == 0
    assert await count(chat, Dialog) == 0
    out = chat.to(await chat.send("小王", "豆豆"), "小王")  # no longer a nickname
    assert not any("出生日期" in t for t in out)
    assert await count(chat, Child) == 0


async def test_bad_birth_dates_are_asked_again_and_cancel_keeps_nothing_unconsented(chat: Chat) -> None:
    await chat.send("小王", "疫苗提醒")
    await chat.send("小王", "同意")
    await chat.send("小王", "豆豆")
    assert "没能看懂" in chat.to(await chat.send("小王", "去年春天"), "小王")[0]
    assert "范围" in chat.to(await chat.send("小王", "2030-01-01"), "小王")[0]
    assert await count(chat, Child) == 0
    await chat.send("小王", "20250501")
    assert await count(chat, Child) == 1


async def test_a_guardian_follows_several_children_and_a_child_has_two_guardians(chat: Chat) -> None:
    _, code = await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    await enrol(chat, "小王", "果果", "2025-06-01")
    assert code is not None and await count(chat, Child) == 2

    out = chat.to(await chat.send("小李", f"加入 {code}"), "小李")
    assert "豆豆" in out[0] and "回复“同意”" in out[0]
    assert await count(chat, Guardianship) == 2  # nothing before consent
    out = await chat.send("小李", "同意")
    assert "已加入" in chat.to(out, "小李")[0]
    assert any("另一位监护人已加入" in t for t in chat.to(out, "小王"))
    assert await count(chat, Guardianship) == 3
    assert await count(chat, Consent) == 3  # one per child enrolled, one for the second guardian

    out = chat.to(await chat.send("小张", f"加入 {code}"), "小张")
    assert "无效" in out[0]  # the code was used up
    assert await count(chat, Guardianship) == 3

    out = chat.to(await chat.send("小王", "我的孩子"), "小王")
    assert "豆豆" in out[0] and "果果" in out[0]
    out = chat.to(await chat.send("小王", "已打 乙肝2 2026-12-16"), "小王")
    assert "哪一个" in out[0]  # two children and no reminder to go by
    out = chat.to(await chat.send("小王", "已打 豆豆 乙肝2 昨天"), "小王")
    assert "已记录豆豆" in out[0]
    out = chat.to(await chat.send("小李", "已打 百白破1 2026-12-20"), "小李")  # her only child
    assert "日期2026-12-20不对" in out[0]  # in the future: not recorded
    assert await count(chat, DoseRecord) == 3


# -- replies to reminders ----------------------------------------------------------------------------


async def test_dose_reply_and_postpone_after_a_reminder(chat: Chat, clock: Clock) -> None:
    _, code = await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    await chat.send("小李", f"加入 {code}")
    await chat.send("小李", "同意")

    at_local(clock, 2026, 12, 9, 9, 0)
    sent = await send_due(chat.services, SETTINGS)
    delivered = await chat.flush()
    assert sent == 2 and {m.recipient for m in delivered} == {"小王", "小李"}  # both guardians
    text = chat.to(delivered, "小王")[0]
    lines = text.split("\n")
    assert lines[0] == HEAD
    assert "豆豆" in text and "乙肝疫苗第2剂" in text and "12月16日" in text
    assert lines[-2] == "具体以接种门诊/家庭医生安排为准。" and lines[-1] == "回复“退订”停止提醒。"

    clock.advance(hours=2)
    out = chat.to(await chat.send("小王", "推迟 3天"), "小王")
    assert "12月12日" in out[0] and "11:00" in out[0]
    at_local(clock, 2026, 12, 12, 11, 0)
    again = await run_job(chat)
    assert len(again) == 2 and "按您的要求再次提醒" in again[0]

    at_local(clock, 2026, 12, 14, 18, 0)
    out = chat.to(await chat.send("小李", "已打"), "小李")  # no dose named: those of the last reminder
    assert "已记录豆豆：乙肝疫苗第2剂（2026-12-14）" in out[0]
    async with chat.services.sessions() as session:
        left = (
            await session.scalars(
                select(Reminder).where(Reminder.for_date == date(2026, 12, 16), Reminder.status == "pending")
            )
        ).all()
    assert left == []  # recorded: the day-before and due-day reminders are gone
    at_local(clock, 2026, 12, 16, 9, 0)
    assert await run_job(chat) == []


async def test_stop_word_stops_everything_for_that_guardian_at_once(chat: Chat, clock: Clock) -> None:
    _, code = await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    await enrol(chat, "小王", "果果", "2026-10-01")
    await chat.send("小李", f"加入 {code}")
    await chat.send("小李", "同意")
    await add_health_staff(chat.services)
    wang = await resident_id(chat, "小王")
    await chat.send("doc", f"随访登记 R{wang} 高血压")
    await chat.send("小王", "同意随访")
    assert await count(chat, FollowupEnrolment, FollowupEnrolment.status == "active") == 1

    out = await chat.send("小王", "TD")
    reply = chat.to(out, "小王")[0]
    assert "已为您停止全部健康提醒" in reply and "2个孩子" in reply and "1项健康随访" in reply
    assert any("已退订" in t for t in chat.to(out, "doc"))
    async with chat.services.sessions() as session:
        children = {c.nickname for c in await session.scalars(select(Child))}
        assert children == {"豆豆"}  # 果果 had only this guardian: deleted; 豆豆 stays for 小李
        assert await session.scalar(select(func.count()).where(Guardianship.resident_id == wang)) == 0
        consents = (await session.scalars(select(Consent).where(Consent.resident_id == wang))).all()
        assert consents and all(c.withdrawn_at is not None for c in consents)
        assert (await session.scalars(select(FollowupEnrolment))).one().status == "ended"

    at_local(clock, 2026, 12, 9, 9, 0)
    await send_due(chat.services, SETTINGS)
    delivered = await chat.flush()
    assert {m.recipient for m in delivered} == {"小李"}  # nothing more to 小王
    again = chat.to(await chat.send("小王", "退订"), "小王")  # nothing of ours left: not handled here
    assert not any("已为您停止" in t for t in again)


async def test_quiet_hours_hold_reminders_and_shift_postponements(chat: Chat, clock: Clock) -> None:
    await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    at_local(clock, 2026, 12, 9, 7, 59)
    assert await run_job(chat) == []  # due at 09:00, and still quiet
    at_local(clock, 2026, 12, 9, 22, 30)  # the job was down all day
    assert await run_job(chat) == []  # quiet hours: held
    at_local(clock, 2026, 12, 10, 8, 0)
    assert len(await run_job(chat)) == 1  # sent when the quiet hours end

    at_local(clock, 2026, 12, 10, 22, 30)
    out = chat.to(await chat.send("小王", "推迟 2天"), "小王")
    assert "12月13日" in out[0] and "08:00" in out[0]  # 22:30 + 2 days is quiet: the next 08:00
    async with chat.services.sessions() as session:
        postponed = (await session.scalars(select(Reminder).where(Reminder.postponed.is_(True)))).one()
    assert postponed.due_at == datetime(2026, 12, 13, 0, 0, tzinfo=UTC)


# -- follow-ups --------------------------------------------------------------------------------------


async def test_grid_workers_and_leaders_are_refused_follow_up_commands(chat: Chat) -> None:
    await chat.send("老李", "你好")
    patient = await resident_id(chat, "老李")
    for who in ("zhang", "li"):
        for command in (f"随访登记 R{patient} 高血压", "随访待办", "随访记录 F1 电话 控制满意", "随访"):
            out = chat.to(await chat.send(who, command), who)
            assert out == ["这个指令仅限卫生服务站工作人员使用。"], (who, command, out)
    assert await count(chat, FollowupEnrolment) == 0
    out = chat.to(await chat.send("老李", "随访登记 R1 高血压"), "老李")  # a resident typing it
    assert out == ["这个指令仅限卫生服务站工作人员使用。"]


async def test_health_staff_enrol_with_consent_and_record_follow_ups(chat: Chat, clock: Clock) -> None:
    await add_health_staff(chat.services)
    number = chat.to(await chat.send("老李", "我的编号"), "老李")[0]
    patient = int(re.search(r"R(\d+)", number).group(1))  # type: ignore[union-attr]

    out = await chat.send("doc", f"随访登记 R{patient} 高血压")
    assert "F1" in chat.to(out, "doc")[0]
    request = chat.to(out, "老李")[0]
    assert request.startswith(HEAD) and "同意随访 1" in request
    assert not any(w in request for w in DISEASE_WORDS)
    assert await count(chat, FollowupEnrolment, FollowupEnrolment.status == "awaiting_consent") == 1
    assert await count(chat, Reminder) == 0  # nothing is reminded before consent

    out = await chat.send("老李", "同意随访 1")
    assert "2027" in chat.to(out, "doc")[0] or "2027-02-21" in chat.to(out, "doc")[0]
    async with chat.services.sessions() as session:
        enrolment = await session.get_one(FollowupEnrolment, 1)
        assert (enrolment.status, enrolment.next_due) == ("active", date(2027, 2, 21))  # 90 days
        consent = await session.get_one(Consent, enrolment.consent_id)
        assert consent.programme == "hypertension" and consent.resident_id == patient

    out = chat.to(await chat.send("doc", "随访记录 F1 电话 控制不满意"), "doc")
    assert "2026-12-07" in out[0]  # uncontrolled: recheck in 2 weeks
    out = chat.to(await chat.send("doc", "随访记录 F1 上门 稳定"), "doc")
    assert "控制满意" in out[0]  # the results this programme knows
    async with chat.services.sessions() as session:
        records = (await session.scalars(select(FollowupRecord))).all()
        assert [(r.method, r.result) for r in records] == [("phone", "uncontrolled")]

    at_local(clock, 2026, 12, 6, 9, 0)
    texts = await run_job(chat)
    assert len(texts) == 1 and texts[0].startswith(HEAD) and "12月7日" in texts[0]
    assert not any(w in texts[0] for w in DISEASE_WORDS)

    out = chat.to(await chat.send("doc", "随访记录 F1 门诊 控制满意 2026-12-06"), "doc")
    assert "2027-03-06" in out[0]
    at_local(clock, 2026, 12, 7, 9, 0)
    assert await run_job(chat) == []  # the old visit's reminders went with the new plan
    listing = chat.to(await chat.send("doc", "随访待办"), "doc")[0]
    assert f"F1 R{patient}" in listing and "高血压" in listing  # staff see the programme


async def test_severe_mental_disorder_needs_written_consent_and_reminds_the_family(
    chat: Chat, clock: Clock
) -> None:
    await add_health_staff(chat.services)
    await chat.send("患者", "你好")
    await chat.send("家属", "你好")
    patient, family = await resident_id(chat, "患者"), await resident_id(chat, "家属")
    out = chat.to(await chat.send("doc", f"随访登记 R{patient} 严重精神障碍"), "doc")
    assert "家属" in out[0]
    out = chat.to(await chat.send("doc", f"随访登记 R{patient} 严重精神障碍 家属 R{family}"), "doc")
    assert "知情同意书" in out[0]
    assert await count(chat, FollowupEnrolment) == 0
    out = await chat.send("doc", f"随访登记 R{patient} 严重精神障碍 家属 R{family} 书面同意")
    assert chat.to(out, "患者") == []  # the request goes to the family contact
    request = chat.to(out, "家属")[0]
    assert "您家人的健康随访" in request and not any(w in request for w in DISEASE_WORDS)
    out = await chat.send("家属", "同意随访")
    async with chat.services.sessions() as session:
        enrolment = (await session.scalars(select(FollowupEnrolment))).one()
        assert (enrolment.interval_days, enrolment.next_due) == (30, date(2026, 12, 23))  # monthly default
        written = (await session.scalars(select(Consent).where(Consent.channel == "written"))).one()
        assert written.resident_id == patient and written.recorded_by == "doc"
    at_local(clock, 2026, 12, 22, 9, 0)
    await send_due(chat.services, SETTINGS)
    texts = await chat.flush()
    assert [m.recipient for m in texts] == ["家属"]
    assert not any(w in texts[0].text for w in DISEASE_WORDS)


async def test_declining_a_follow_up_deletes_the_enrolment(chat: Chat) -> None:
    await add_health_staff(chat.services)
    await chat.send("老李", "你好")
    patient = await resident_id(chat, "老李")
    await chat.send("doc", f"随访登记 R{patient} 糖尿病")
    out = await chat.send("老李", "不同意随访 1")
    assert "已删除" in chat.to(out, "老李")[0]
    assert any("未同意" in t for t in chat.to(out, "doc"))
    assert await count(chat, FollowupEnrolment) == 0
    assert await count(chat, Resident) >= 1


async def test_health_staff_help_lists_the_follow_up_commands_and_refuses_case_commands(chat: Chat) -> None:
    # Their help comes from the command registry: the reminders feature's 随访 lines, no case commands.
    await add_health_staff(chat.services)
    help_text = chat.to(await chat.send("doc", "帮助"), "doc")[0]
    assert "刘医生" in help_text and "随访登记" in help_text and "随访待办" in help_text
    assert not any(word in help_text for word in ("接单", "分派", "广播", "统计"))
    refused = chat.to(await chat.send("doc", "改类 1 垃圾"), "doc")[0]
    assert "改类" not in refused and "仅限" in refused
