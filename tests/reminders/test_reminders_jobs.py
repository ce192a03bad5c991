"""The reminder job (SQLite and PostgreSQL): time travel over a child's first six years, crash and restart
between claiming and sending, concurrent jobs, and ``outreach-bot reminders due``."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from handlers.reminders import jobs
from handlers.reminders.config import ReminderSettings
from handlers.reminders.jobs import send_due
from handlers.reminders.models import Child, Consent, Guardianship, Reminder
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import OutboxMessage, Resident, ResidentIdentity
from tests.reminders.test_reminders_chat import HEAD, enrol
from tests.support.chat import Chat, Clock, RecordingSender
from tests.support.cli import lines, run

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = ReminderSettings()


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ).astimezone(UTC)


async def reminder_rows(services: Services) -> int:
    async with services.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "reminder")
            )
            or 0
        )


# -- six years ---------------------------------------------------------------------------------------

# Born 2026-11-16, enrolled a week later with HepB 1 and BCG recorded. The guardian records each dose on
# its due day after that day's reminder, except: nothing at 6 months until a catch-up on 2027-06-20; at
# 8 months MMR 1 only (JE-L 1 then waits 28 days); at 6 years nothing (two overdue nudges, then silence).
EXPECTED: list[tuple[date, tuple[str, ...]]] = [
    (date(2026, 12, 9), ("乙肝疫苗第2剂",)),
    (date(2026, 12, 15), ("乙肝疫苗第2剂",)),
    (date(2026, 12, 16), ("乙肝疫苗第2剂",)),
    *[(date(2027, 1, d), ("脊灰灭活疫苗第1剂", "百白破疫苗第1剂")) for d in (9, 15, 16)],
    *[(date(2027, 2, d), ("脊灰灭活疫苗第2剂",)) for d in (9, 15, 16)],
    *[(date(2027, 3, d), ("脊灰减毒活疫苗第1剂", "百白破疫苗第2剂")) for d in (9, 15, 16)],
    *[
        (day, ("乙肝疫苗第3剂", "百白破疫苗第3剂", "A群流脑多糖疫苗第1剂"))
        for day in (
            date(2027, 5, 9),
            date(2027, 5, 15),
            date(2027, 5, 16),
            date(2027, 5, 23),
            date(2027, 6, 15),
        )
    ],
    *[(date(2027, 7, d), ("麻腮风疫苗第1剂", "乙脑减毒活疫苗第1剂")) for d in (9, 15, 16)],
    *[(date(2027, 8, d), ("乙脑减毒活疫苗第1剂",)) for d in (6, 12, 13)],  # 28 days after MMR 1
    *[(date(2027, 9, d), ("A群流脑多糖疫苗第2剂",)) for d in (11, 17, 18)],  # 90 days after the catch-up
    *[(date(2028, 5, d), ("百白破疫苗第4剂", "麻腮风疫苗第2剂", "甲肝减毒活疫苗")) for d in (9, 15, 16)],
    *[(date(2028, 11, d), ("乙脑减毒活疫苗第2剂",)) for d in (9, 15, 16)],
    *[(date(2029, 11, d), ("A群C群流脑多糖疫苗第1剂",)) for d in (9, 15, 16)],
    *[(date(2030, 11, d), ("脊灰减毒活疫苗第2剂",)) for d in (9, 15, 16)],
    *[
        (day, ("百白破疫苗第5剂", "A群C群流脑多糖疫苗第2剂"))
        for day in (
            date(2032, 11, 9),
            date(2032, 11, 15),
            date(2032, 11, 16),
            date(2032, 11, 23),
            date(2032, 12, 16),
        )
    ],
]

ACTIONS: dict[datetime, str] = {
    local(2026, 12, 16, 10): "已打",
    local(2027, 1, 16, 10): "已打",
    local(2027, 2, 16, 10): "已打",
    local(2027, 3, 16, 10): "已打",
    local(2027, 6, 20, 10): "已打",  # after the +30 nudge: the three 6-month doses, caught up today
    local(2027, 7, 16, 10): "已打 麻腮风1",
    local(2027, 8, 13, 10): "已打",
    local(2027, 9, 18, 10): "已打",
    local(2028, 5, 16, 10): "已打",
    local(2028, 11, 16, 10): "已打",
    local(2029, 11, 16, 10): "已打",
    local(2030, 11, 16, 10): "已打",
}


async def test_six_years_of_reminders_each_on_its_date_once(chat: Chat, clock: Clock) -> None:
    await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    end = local(2033, 1, 31)
    got: list[tuple[date, str]] = []
    replies: list[str] = []
    while True:
        async with chat.services.sessions() as session:
            next_due = await session.scalar(
                select(func.min(Reminder.due_at)).where(Reminder.status == "pending")
            )
        next_action = min((t for t in ACTIONS if t > clock.now), default=None)
        moments = [t for t in (next_due, next_action) if t is not None]
        if not moments or min(moments) > end:
            break
        clock.now = min(moments)
        if clock.now == next_due:
            assert await send_due(chat.services, SETTINGS) >= 1
            assert await send_due(chat.services, SETTINGS) == 0  # once: a second run finds nothing
            for message in await chat.flush():
                assert message.recipient == "小王"
                when = clock.now.astimezone(TZ)
                assert when.hour == 9 and when.minute == 0
                got.append((when.date(), message.text))
        if clock.now in ACTIONS:
            replies += chat.to(await chat.send("小王", ACTIONS[clock.now]), "小王")
    assert [d for d, _ in got] == [d for d, _ in EXPECTED]
    for (day, text), (_, names) in zip(got, EXPECTED, strict=True):
        assert text.startswith(HEAD + "\n"), day
        assert all(n in text for n in names), (day, names, text)
        assert "豆豆" in text and text.endswith("回复“退订”停止提醒。")
    overdue = [t for d, t in got if d in (date(2027, 5, 23), date(2027, 6, 15))]
    assert all("尚未记录接种" in t for t in overdue)
    assert all(r.startswith("已记录豆豆") for r in replies), replies
    assert replies[5].split("\n") == [  # 7-16: MMR 1 only; JE-L 1 now waits 28 days
        "已记录豆豆：麻腮风疫苗第1剂（2027-07-16）。",
        "下一次接种：8月13日（周五），乙脑减毒活疫苗第1剂。",
    ]
    assert replies[4].startswith("已记录豆豆：乙肝疫苗第3剂（2027-06-20）、")  # the catch-up


# -- crashes, restarts, concurrency ------------------------------------------------------------------


async def test_crash_between_claim_and_enqueue_loses_nothing(
    chat: Chat, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    clock.now = local(2026, 12, 9)

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("process killed after claiming")

    monkeypatch.setattr(jobs, "enqueue", crash)
    with pytest.raises(RuntimeError):
        await send_due(chat.services, SETTINGS)
    async with chat.services.sessions() as session:
        row = (await session.scalars(select(Reminder).where(Reminder.due_at <= clock.now))).one()
        assert (row.status, row.attempts, row.sent_at) == ("pending", 0, None)  # the claim rolled back
    assert await reminder_rows(chat.services) == 0
    monkeypatch.undo()

    assert await send_due(chat.services, SETTINGS) == 1  # the restarted job sends it
    assert len(chat.to(await chat.flush(), "小王")) == 1
    assert await send_due(chat.services, SETTINGS) == 0
    assert await chat.flush() == []


async def test_restart_after_enqueue_before_delivery_sends_once(
    chat: Chat, clock: Clock, db_url: str
) -> None:
    await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    clock.now = local(2026, 12, 9)
    assert await send_due(chat.services, SETTINGS) == 1  # committed to the outbox; the process dies here

    engine = create_engine(db_url)  # a new process on the same database
    try:
        restarted = Services(
            sessions=session_factory(engine),
            community=chat.services.community,
            channels=chat.services.channels,
            clock=clock,
        )
        assert await send_due(restarted, SETTINGS) == 0
        # even if the reminder's own status were lost, the outbox dedup key keeps a second copy out
        async with restarted.sessions.begin() as session:
            await session.execute(
                update(Reminder).where(Reminder.due_at <= clock.now).values(status="pending")
            )
        assert await send_due(restarted, SETTINGS) == 0
        sender = RecordingSender("console")
        again = Chat(restarted, conversation(restarted), sender, clock)
        delivered = await again.flush()
        assert [m.recipient for m in delivered] == ["小王"]
        assert await again.flush() == []
        assert await reminder_rows(restarted) == 1
    finally:
        await engine.dispose()


async def seed_due(services: Services, children: int, due_at: datetime) -> None:
    """``children`` children, each with one guardian and one reminder due at ``due_at``."""
    async with services.sessions.begin() as session:
        for n in range(children):
            resident = Resident(display_name=f"家长{n}")
            session.add(resident)
            await session.flush()
            session.add(ResidentIdentity(channel="console", external_id=f"家长{n}", resident_id=resident.id))
            consent = Consent(
                resident_id=resident.id, programme="child_vaccination", text_version="v1", channel="console"
            )
            child = Child(nickname=f"娃{n}", birth_date=date(2026, 11, 16))
            session.add_all([consent, child])
            await session.flush()
            session.add(Guardianship(child_id=child.id, resident_id=resident.id, consent_id=consent.id))
            session.add(
                Reminder(
                    kind="vaccine",
                    child_id=child.id,
                    for_date=date(2026, 12, 16),
                    offset_days=-7,
                    doses=[["HepB", 2]],
                    due_at=due_at,
                    status="pending",
                    key=f"c{child.id}:2026-12-16:-7",
                )
            )


async def test_two_jobs_at_once_do_not_double_send(chat: Chat, clock: Clock) -> None:
    clock.now = local(2026, 12, 9)
    await seed_due(chat.services, 40, clock.now - timedelta(minutes=1))
    small = ReminderSettings(batch_size=3)
    results = await asyncio.gather(send_due(chat.services, small), send_due(chat.services, small))
    assert sum(results) == 40
    async with chat.services.sessions() as session:
        keys = (
            await session.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.kind == "reminder"))
        ).all()
        statuses = set((await session.scalars(select(Reminder.status))).all())
    assert len(keys) == len(set(keys)) == 40
    assert statuses == {"sent"}
    delivered = await chat.flush()
    assert len(delivered) == 40 and len({m.recipient for m in delivered}) == 40


async def test_the_job_reads_due_reminders_through_the_index(chat: Chat) -> None:
    async with chat.services.sessions() as session:
        connection = await session.connection()
        if connection.dialect.name == "sqlite":
            sql = "EXPLAIN QUERY PLAN SELECT id FROM rem_reminders WHERE status = 'pending' AND due_at <= ?"
            plan = " ".join(str(r) for r in (await connection.exec_driver_sql(sql, ("2026-12-09",))).all())
        else:
            await connection.exec_driver_sql("SET enable_seqscan = off")
            sql = "EXPLAIN SELECT id FROM rem_reminders WHERE status = 'pending' AND due_at <= now()"
            plan = " ".join(str(r) for r in (await connection.exec_driver_sql(sql)).all())
    assert "ix_rem_reminders_status_due" in plan, plan


# -- the command line --------------------------------------------------------------------------------


async def test_reminders_due_lists_what_would_be_sent(tmp_path: Path, sample: object, clock: Clock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'due.db'}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            await sync_community(session, sample)  # type: ignore[arg-type]
        services = Services(sessions=sessions, community=sample, channels=frozenset({"console"}), clock=clock)  # type: ignore[arg-type]
        chat = Chat(services, conversation(services), RecordingSender("console"), clock)
        await enrol(chat, "小王", "豆豆", "2026-11-16", "乙肝1 2026-11-16 卡介苗 2026-11-16")
    finally:
        await engine.dispose()
    env = {"OUTREACH_DATABASE_URL": url}
    rows = lines(run(["reminders", "due", "--as-of", "2026-12-09"], env=env))
    assert [(r["target"], r["doses"], r["send"], r["offset_days"]) for r in rows] == [
        ("child:1", [["HepB", 2]], True, -7)
    ]
    assert rows[0]["due_at"].startswith("2026-12-09T09:00") and rows[0]["recipients"] == 1
    assert lines(run(["reminders", "due", "--as-of", "2026-12-08"], env=env)) == []
    later = lines(run(["reminders", "due", "--as-of", "2026-12-16"], env=env))
    assert [r["offset_days"] for r in later] == [-7, -1, 0]
    assert all(r["send"] for r in later)  # each on its own date, if the job runs
