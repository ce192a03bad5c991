"""Everything per community, and across the 街道 (issue 15, point 4): ``tickets --community``,
``stats`` per community and the 街道 table, the chat's 统计 for a community admin and a 街道 admin, the
Open311 export's ``jurisdiction_id``; on SQLite and PostgreSQL (the matrix), with the two-community
街道 of tests/data/street/heping_street.yaml (和平里社区 HPL, 锦绣园社区 JXY, each with its own G1)."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.cli import ticket_rows
from handlers.cases.stats import compute, period_bounds
from handlers.cases.street_stats import compute_street
from handlers.community.store import community_ids, sync_street
from handlers.community.street import Street, load_street
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from tests.support.chat import Chat, Clock, RecordingSender, street_chat_in
from tests.support.cli import run

STREET_FILE = Path(__file__).parents[1] / "data" / "street" / "heping_street.yaml"


@pytest.fixture(scope="module")
def street() -> Street:
    return load_street(STREET_FILE)


@pytest.fixture
async def chat(sessions: async_sessionmaker[AsyncSession], street: Street, clock: Clock) -> Chat:
    return await street_chat_in(sessions, street, clock)


async def three_cases(chat: Chat) -> None:
    """HPL-1 and HPL-2 open (hzhang's); JXY-1 fixed by jwang on time."""
    await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")
    await chat.send("小李", "5号楼门口垃圾堆了好几天")
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")
    await chat.send("jwang", "接单 1")
    out = await chat.send("jwang", "完成 1 已清理干净")
    assert any("JXY-1" in t for t in chat.to(out, "jwang"))
    chat.clock.advance(minutes=1)  # the figures count what was received before "now"


async def test_tickets_of_one_community_with_the_numbers_people_see(chat: Chat, street: Street) -> None:
    await three_cases(chat)
    async with chat.services.sessions() as session:
        every = await ticket_rows(session, street)
        hpl = await ticket_rows(session, street, community="hpl")  # any letter case
        jxy_fixed = await ticket_rows(session, street, community="JXY", status="resolved")
        jxy_open = await ticket_rows(session, street, community="JXY", status="assigned")
        unknown = await ticket_rows(session, street, community="XYZ")
    assert isinstance(every, list) and [r["number"] for r in every] == ["HPL-1", "HPL-2", "JXY-1"]
    assert isinstance(hpl, list) and [(r["number"], r["community"]) for r in hpl] == [
        ("HPL-1", "HPL"),
        ("HPL-2", "HPL"),
    ]
    assert {r["assignee"] for r in hpl} == {"hzhang"}
    assert isinstance(jxy_fixed, list) and [r["number"] for r in jxy_fixed] == ["JXY-1"]
    assert jxy_fixed[0]["resolution_note"] == "已清理干净"
    assert jxy_open == []
    assert isinstance(unknown, str) and "XYZ" in unknown and "HPL" in unknown and "JXY" in unknown


async def test_stats_per_community_and_the_street_table(chat: Chat, street: Street) -> None:
    await three_cases(chat)
    now = chat.clock.now
    async with chat.services.sessions() as session:
        ids = await community_ids(session)
        hpl, jxy = street.get("HPL"), street.get("JXY")
        assert hpl is not None and jxy is not None
        start, end = period_bounds("month", now, hpl.timezone)
        hpl_report = await compute(session, hpl, start, end, now, community_id=ids["HPL"])
        jxy_report = await compute(session, jxy, start, end, now, community_id=ids["JXY"])
        table = await compute_street(session, street, ids, start, end, now, period="month")
    # each community counts its own cases only, though both have a G1
    assert (hpl_report.total.received, hpl_report.total.in_hand, hpl_report.total.closed) == (2, 2, 0)
    assert (jxy_report.total.received, jxy_report.total.closed, jxy_report.total.on_time) == (1, 1, 1)
    assert [(r.key, r.received) for r in hpl_report.by_grid] == [("G1", 2)]
    # the 街道 table: one row per community, ranked by 按期处置率 (a community with none ranks after)
    assert [(r.key, r.name, r.received, r.closed) for r in table.rows] == [
        (
            "JXY",
            "锦绣园社区",
            1,
            1,
        ),
        ("HPL", "和平里社区", 2, 0),
    ]
    assert table.rows[0].on_time_rate == 1.0 and table.rows[1].on_time_rate is None
    assert table.total.received == 3 and table.total.closed == 1
    shown = table.as_dict()
    assert [(c["rank"], c["key"]) for c in shown["by_community"]] == [(1, "JXY"), (2, "HPL")]


async def test_chat_stats_community_admin_sees_theirs_street_admin_the_ranking(chat: Chat) -> None:
    await three_cases(chat)
    out = await chat.send("hchen", "统计")
    said = "\n".join(chat.to(out, "hchen"))
    assert "和平里社区" in said and "受理 2 件" in said and "锦绣园" not in said
    out = await chat.send("jchen", "统计")
    said = "\n".join(chat.to(out, "jchen"))
    assert "锦绣园社区" in said and "受理 1 件" in said and "和平里" not in said
    out = await chat.send("zhao", "统计")
    said = chat.to(out, "zhao")[0]
    lines = said.splitlines()
    assert "和平街道" in lines[0]
    assert lines[1].startswith("1. 锦绣园社区") and "按期 100.0%" in lines[1]
    assert lines[2].startswith("2. 和平里社区") and "受理 2" in lines[2]
    assert "合计受理 3 件" in said


async def test_staff_lists_show_their_communities_cases_only(chat: Chat) -> None:
    await three_cases(chat)
    out = await chat.send("jchen", "待分拣")
    assert not any("HPL-" in t for t in chat.to(out, "jchen"))
    out = await chat.send("hzhang", "我的")
    said = "\n".join(chat.to(out, "hzhang"))
    assert "HPL-1" in said and "JXY-" not in said


async def test_the_command_lines_per_community(chat: Chat, db_url: str) -> None:
    await three_cases(chat)
    env = {"OUTREACH_DATABASE_URL": db_url}
    day = ["--as-of", chat.clock.now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()]
    tickets = run(["tickets", "--community", "JXY", "--format", "json"], env=env)
    assert tickets.returncode == 0, tickets.stderr.decode()
    rows = [json.loads(line) for line in tickets.stdout.decode().splitlines()]
    assert [(r["number"], r["community"]) for r in rows] == [("JXY-1", "JXY")]
    bad = run(["tickets", "--community", "NOPE"], env=env)
    assert bad.returncode == 2 and "NOPE" in bad.stderr.decode() and bad.stdout == b""

    stats = run(["stats", "--format", "json", *day], env=env)  # a 街道: the table
    assert stats.returncode == 0, stats.stderr.decode()
    figures = json.loads(stats.stdout)
    assert [(c["rank"], c["key"], c["received"]) for c in figures["by_community"]] == [
        (
            1,
            "JXY",
            1,
        ),
        (2, "HPL", 2),
    ]
    one = json.loads(run(["stats", "--community", "HPL", "--format", "json", *day], env=env).stdout)
    assert one["community"] == "和平里社区" and one["total"]["received"] == 2
    csv_out = run(["stats", "--format", "csv", *day], env=env)
    header, first = csv_out.stdout.decode("utf-8-sig").splitlines()[:2]
    assert header.startswith("排名,社区代码,名称,受理") and first.startswith("1,JXY,锦绣园社区,1,")
    text = run(["stats", *day], env=env).stdout.decode()
    assert "和平街道" in text and text.index("锦绣园社区") < text.index("和平里社区")
    refused = run(["stats", "--grid", "G1"], env=env)  # G1 of which community?
    assert refused.returncode == 2 and "--community" in refused.stderr.decode()

    export = run(["export", "--format", "open311"], env=env)
    assert export.returncode == 0, export.stderr.decode()
    requests = json.loads(export.stdout)
    assert [r["jurisdiction_id"] for r in requests] == ["HPL", "HPL", "JXY"]
    assert requests[2]["agency_responsible"] == "锦绣园一网格"
    only = json.loads(run(["export", "--format", "open311", "--jurisdiction", "HPL"], env=env).stdout)
    assert len(only) == 2 and {r["jurisdiction_id"] for r in only} == {"HPL"}


async def test_the_digest_per_community_and_the_street_admins_summary(chat: Chat) -> None:
    from datetime import UTC, datetime

    from handlers.cases.digest import send_digests

    await three_cases(chat)  # HPL-1, HPL-2 open (hzhang, leader hli); JXY-1 resolved
    await chat.send("小王", "锦绣园6号楼下水道堵了")  # JXY-2, jwang's
    chat.clock.now = datetime(2026, 11, 24, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    assert await send_digests(chat.services) > 0
    out = await chat.flush()

    [worker] = [t for t in chat.to(out, "hzhang") if "【每日待办】" in t]
    assert worker.startswith("【和平里社区】") and "在办案件 2 件" in worker
    assert "#HPL-1" in worker and "#HPL-2" in worker and "JXY" not in worker
    [leader] = [t for t in chat.to(out, "jli") if "【每日待办】" in t]
    assert "锦绣园一网格：在办 1 件" in leader and "#JXY-2" in leader and "HPL" not in leader
    # the 街道 admin: one summary, every community; no per-community digest
    [summary] = chat.to(out, "zhao")
    assert "和平街道" in summary and "【每日待办】" not in summary
    assert "和平里社区：在办 2 件" in summary and "锦绣园社区：在办 1 件" in summary
    assert await send_digests(chat.services) == 0  # once a day


async def test_broadcasts_reach_the_residents_of_the_chosen_communities(chat: Chat) -> None:
    from handlers.broadcasts import audience as aud

    await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")  # 小李: HPL
    await chat.send("小张", "和平里小区4号楼门口有垃圾")  # 小张: HPL
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")  # 小王: JXY
    async with chat.services.sessions() as session:
        assert (await aud.count(session, aud.Audience.of(communities=["hpl"]))).residents == 2
        assert (await aud.count(session, aud.Audience.of(communities=["JXY"]))).residents == 1
        assert (await aud.count(session, aud.Audience.of(communities=["HPL", "JXY"]))).residents == 3
        assert (await aud.count(session, aud.Audience.of())).residents == 3  # the whole 街道
        # staff: members of the community only (hzhang, roam, hli, hchen and the 街道's zhao)
        staff = await aud.staff_recipients(
            session, aud.Audience.of(tags=["staff"], communities=["JXY"]), None
        )
        assert "shzhang" not in {r.key for r in staff}
        with pytest.raises(aud.AudienceError):
            await aud.validate(session, aud.Audience.of(communities=["NOPE"]))

    # a community admin broadcasts to their own community, whatever they write
    draft = chat.to(await chat.send("jchen", "广播 全体 明天上午停水"), "jchen")[0]
    assert "共 1 人" in draft and "JXY" in draft
    # a 街道 admin chooses: a community by name, or the whole 街道
    draft = chat.to(await chat.send("zhao", "广播 和平里 明天上午停水"), "zhao")[0]
    assert "共 2 人" in draft and "HPL" in draft
    draft = chat.to(await chat.send("zhao", "广播 全体 明天上午停水"), "zhao")[-1]
    assert "共 3 人" in draft
    out = await chat.send("jchen", "确认发送")
    assert any("已确认" in t for t in chat.to(out, "jchen"))


async def test_the_broadcast_command_line_asks_which_communities(chat: Chat, db_url: str) -> None:
    await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")
    env = {"OUTREACH_DATABASE_URL": db_url}
    base = ["broadcast", "--text", "明天停水", "--dry-run"]
    unsaid = run(base, env=env)
    assert unsaid.returncode == 2 and "--street" in unsaid.stderr.decode()
    one = run([*base, "--community", "HPL"], env=env)
    assert one.returncode == 0, one.stderr.decode()
    assert "1" in one.stdout.decode() and "HPL" in one.stdout.decode()
    both = run([*base, "--community", "HPL,JXY"], env=env)
    assert both.returncode == 0, both.stderr.decode()
    street = run([*base, "--street"], env=env)
    assert street.returncode == 0, street.stderr.decode()
    bad = run([*base, "--community", "NOPE"], env=env)
    assert bad.returncode == 2 and "NOPE" in bad.stderr.decode()
    grid = run([*base, "--street", "--grid", "G1"], env=env)
    assert grid.returncode == 2 and "--community" in grid.stderr.decode()


async def test_deadlines_run_on_the_case_communitys_working_time(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """和平里 works 08:00-20:00 every day; 锦绣园 keeps the default (08:30-12:00, 13:30-17:30, Monday
    to Friday): the same report on a Friday at 17:00 is due at different times."""
    from datetime import UTC, datetime

    import yaml
    from sqlalchemy import select

    from handlers.cases.deadlines import scan
    from handlers.cases.models import Case
    from handlers.community.street import parse_street

    data = yaml.safe_load(STREET_FILE.read_text(encoding="utf-8"))
    data["communities"][0]["working_time"] = {
        "hours": ["08:00-20:00"],
        "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "national_holidays": False,
    }
    street = parse_street(data, STREET_FILE.parent)
    async with sessions.begin() as session:
        await sync_street(session, street)
    services = Services(
        sessions=sessions,
        community=street.communities[0],
        street=street,
        channels=frozenset({"console"}),
        clock=clock,
    )
    chat = Chat(services, conversation(services), RecordingSender("console"), clock)
    shanghai = ZoneInfo("Asia/Shanghai")
    clock.now = datetime(2026, 11, 27, 17, 0, tzinfo=shanghai).astimezone(UTC)  # a Friday
    await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")
    async with sessions() as session:
        hpl, jxy = (await session.scalars(select(Case).order_by(Case.id))).all()
    assert hpl.time_limit_hours == jxy.time_limit_hours and hpl.due_at is not None and jxy.due_at is not None
    hpl_community, jxy_community = street.get("HPL"), street.get("JXY")
    assert hpl_community is not None and jxy_community is not None
    limit = hpl.time_limit_hours
    assert hpl.due_at == hpl_community.calendar.add(hpl.created_at, limit)
    assert jxy.due_at == jxy_community.calendar.add(jxy.created_at, limit)
    assert hpl.due_at.astimezone(shanghai).weekday() == 5  # Saturday: 和平里 works weekends
    assert jxy.due_at.astimezone(shanghai).weekday() == 0  # Monday: 锦绣园 does not
    # the scan on Sunday rings 和平里's overdue case only, to its own leader
    clock.now = datetime(2026, 11, 29, 12, 0, tzinfo=shanghai).astimezone(UTC)
    await scan(services)
    out = await chat.flush()
    assert any("HPL-1" in t for t in chat.to(out, "hli"))
    assert not any("JXY-1" in t for t in chat.to(out, "jli"))


async def test_follow_ups_stay_in_their_community(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """A health worker of 和平里 enrols and lists 和平里's residents only; the resident's notice names
    和平里's 卫生服务站; 锦绣园's resident is unknown to them (nothing leaks between communities)."""
    import yaml
    from sqlalchemy import select

    from handlers.community.street import parse_street
    from storage.models import ResidentIdentity

    data = yaml.safe_load(STREET_FILE.read_text(encoding="utf-8"))
    data["communities"][0]["staff"].append({"id": "hdoc", "name": "和医生", "role": "health"})
    street = parse_street(data, STREET_FILE.parent)
    async with sessions.begin() as session:
        await sync_street(session, street)
    services = Services(
        sessions=sessions,
        community=street.communities[1],  # the deployment's "first" is not the resident's
        street=street,
        channels=frozenset({"console"}),
        clock=clock,
    )
    chat = Chat(services, conversation(services), RecordingSender("console"), clock)
    await chat.send("小李", "和平里小区3号楼楼道里贴满了小广告")
    await chat.send("小王", "锦绣园3号楼楼道里贴满了小广告")
    async with sessions() as session:
        ids = dict(
            (await session.execute(select(ResidentIdentity.external_id, ResidentIdentity.resident_id))).all()
        )
    li, wang = ids["小李"], ids["小王"]

    out = await chat.send("hdoc", f"随访登记 R{wang} 高血压")
    assert any(f"找不到居民“R{wang}”" in t for t in chat.to(out, "hdoc"))
    assert not chat.to(out, "小王")
    out = await chat.send("hdoc", f"随访登记 R{li} 高血压")
    assert any("已登记随访 F1" in t for t in chat.to(out, "hdoc"))
    [notice] = chat.to(out, "小李")
    assert notice.startswith("【和平里社区卫生服务站】")
    out = await chat.send("hdoc", "随访待办")
    listed = "\n".join(chat.to(out, "hdoc"))
    assert f"R{li}" in listed and f"R{wang}" not in listed
