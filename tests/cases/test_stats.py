"""Statistics (按期处置率, 返工率, satisfaction, overdue, median time to close) per grid, category and
worker, from cases made through the real conversation, on SQLite and PostgreSQL; the period
boundaries; the 统计 chat command; and ``outreach-bot stats`` / ``export --format open311``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from handlers.cases import stats
from handlers.cases.models import Case, CaseStatus
from handlers.community.model import load_community
from handlers.community.store import sync_community
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from storage.database import create_engine, session_factory
from storage.migrate import upgrade
from tests.support.chat import Chat, Clock, RecordingSender
from tests.support.cli import run

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)


# -- period boundaries (pure) ---------------------------------------------------------------------------


def test_period_start_day_iso_week_month_quarter() -> None:
    wednesday = date(2026, 11, 25)
    assert stats.period_start("day", wednesday) == wednesday
    assert stats.period_start("week", wednesday) == date(2026, 11, 23)
    assert stats.period_start("week", date(2026, 11, 23)) == date(2026, 11, 23)  # a Monday is its own week
    assert stats.period_start("week", date(2026, 11, 29)) == date(2026, 11, 23)  # Sunday ends the ISO week
    assert stats.period_start("week", date(2027, 1, 1)) == date(2026, 12, 28)  # across the new year
    assert stats.period_start("month", wednesday) == date(2026, 11, 1)
    assert stats.period_start("quarter", wednesday) == date(2026, 10, 1)
    assert stats.period_start("quarter", date(2026, 3, 31)) == date(2026, 1, 1)
    assert stats.period_start("quarter", date(2026, 4, 1)) == date(2026, 4, 1)
    with pytest.raises(ValueError):
        stats.period_start("year", wednesday)  # type: ignore[arg-type]


def test_period_bounds_are_local_midnights_up_to_now_or_the_end_of_the_as_of_day() -> None:
    now = local(2026, 11, 1, 0, 30)  # 31 October 16:30 UTC, but 1 November in Shanghai
    assert stats.period_bounds("month", now, SHANGHAI) == (local(2026, 11, 1), now)
    assert stats.period_bounds("day", now, SHANGHAI) == (local(2026, 11, 1), now)
    later = local(2026, 12, 5, 12, 0)
    assert stats.period_bounds("month", later, SHANGHAI, date(2026, 10, 15)) == (
        local(2026, 10, 1),
        local(2026, 10, 16),
    )
    assert stats.period_bounds("month", later, SHANGHAI, date(2026, 10, 31)) == (
        local(2026, 10, 1),
        local(2026, 11, 1),
    )
    assert stats.period_bounds("week", later, SHANGHAI, date(2026, 11, 25)) == (
        local(2026, 11, 23),
        local(2026, 11, 26),
    )
    # as-of: as if asked at the end of that day, whenever it is asked
    assert stats.period_bounds("day", later, SHANGHAI, date(2026, 12, 5)) == (
        local(2026, 12, 5),
        local(2026, 12, 6),
    )
    # a zone with daylight saving: the local midnight, whatever the offset that day
    new_york = ZoneInfo("America/New_York")
    start, _ = stats.period_bounds("day", datetime(2026, 11, 1, 12, 0, tzinfo=UTC), new_york)
    assert start == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # EDT (-4) at midnight, EST later that day


# -- figures from the real conversation -----------------------------------------------------------------


async def build_month(chat: Chat) -> None:
    """Eight cases, October and November 2026 (see the expected figures in the tests)."""
    clock = chat.clock
    clock.now = local(2026, 10, 30, 10, 0)
    await chat.send("小周", "2号楼有小广告")  # 1: G1 poster zhang, reported in October
    clock.now = local(2026, 11, 1, 0, 30)  # still 31 October in UTC
    await chat.send("小吴", "4号楼垃圾堆满了")  # 2: G1 garbage zhang, never handled: overdue
    clock.now = local(2026, 11, 10, 10, 0)
    await chat.send("zhang", "完成 1 已清理")  # 1: closed in November, 264 h after the report, late

    clock.now = local(2026, 11, 23, 9, 30)
    await chat.send("小王", "3号楼有小广告")  # 3: G1 poster zhang
    await chat.send("zhang", "接单 3")
    clock.now = local(2026, 11, 23, 11, 30)
    await chat.send("zhang", "完成 3 已清理")  # 3: on time, 2 h
    await chat.send("小王", "1")  # 满意
    await chat.send("小李", "5号楼门口垃圾堆满了")  # 4: G1 garbage zhang
    await chat.send("小张", "8号楼有小广告")  # 5: G2 poster zhao
    clock.now = local(2026, 11, 23, 12, 30)
    await chat.send("zhao", "完成 5 已清理")  # 5: first finished after 1 h
    await chat.send("小张", "2")  # 不满意 …
    await chat.send("小张", "还是很多")  # … with the reason: reopened
    clock.now = local(2026, 11, 23, 14, 0)
    await chat.send("zhao", "完成 5 又清理了一遍")  # in time for the new limit, but reworked
    await chat.send("小张", "1")
    await chat.send("小陈", "16号楼有小广告")  # 6: G3 poster wu
    clock.now = local(2026, 11, 23, 14, 30)
    await chat.send("wu", "转交 6 城管执法队")  # 6: closed without a fix after 0.5 h
    await chat.send("小赵", "15号楼下水道堵了")  # 7: G3 sewage zheng, never handled: overdue
    clock.now = local(2026, 11, 25, 10, 0)
    await chat.send("zhang", "完成 4 已清运")  # 4: late (4 working hours), 46.5 h
    clock.now = local(2026, 11, 27, 10, 0)
    await chat.send("小孙", "10号楼有积水蚊子很多")  # 8: G2 mosquito zhao, not due yet
    clock.now = local(2026, 11, 27, 10, 5)

    async with chat.services.sessions() as session:
        got = {c.id: c for c in (await session.scalars(select(Case))).all()}
    assert len(got) == 8
    expected = {
        1: ("G1", "poster", "zhang", CaseStatus.RESOLVED, 0),
        2: ("G1", "garbage", "zhang", CaseStatus.ASSIGNED, 0),
        3: ("G1", "poster", "zhang", CaseStatus.CONFIRMED, 0),
        4: ("G1", "garbage", "zhang", CaseStatus.RESOLVED, 0),
        5: ("G2", "poster", "zhao", CaseStatus.CONFIRMED, 1),
        6: ("G3", "poster", "wu", CaseStatus.CLOSED, 0),
        7: ("G3", "sewage", "zheng", CaseStatus.ASSIGNED, 0),
        8: ("G2", "mosquito", "zhao", CaseStatus.ASSIGNED, 0),
    }
    actual = {
        n: (c.grid_code, c.category_code, c.assignee_id, c.status, c.reopen_count) for n, c in got.items()
    }
    assert actual == expected


async def month_report(chat: Chat, period: stats.Period = "month", **kwargs: object) -> stats.Report:
    community = chat.services.community
    now = chat.clock.now
    start, end = stats.period_bounds(period, now, community.timezone)
    async with chat.services.sessions() as session:
        return await stats.compute(session, community, start, end, now, period=period, **kwargs)  # type: ignore[arg-type]


def by_key(rows: list[stats.Row]) -> dict[str | None, stats.Row]:
    return {r.key: r for r in rows}


def figures(row: stats.Row) -> tuple[int, ...]:
    return (
        row.received,
        row.closed,
        row.in_hand,
        row.triage,
        row.referred,
        row.merged,
        row.invalid,
        row.on_time,
        row.handled,
        row.reworked,
        row.ratings_good,
        row.ratings_bad,
        row.overdue_now,
        row.backlog,
    )


def assert_states_add_up(report: stats.Report) -> None:
    """受理 = 办结 + 在办 + 待分拣 + 转交 + 合并 + 无效, in every row, and the groups add up to the total."""
    for row in [report.total, *report.by_grid, *report.by_category, *report.by_worker]:
        parts = (row.closed, row.in_hand, row.triage, row.referred, row.merged, row.invalid)
        assert row.received == sum(parts), (row.name, figures(row))
        assert row.open_now == row.in_hand + row.triage and row.overdue_now <= row.open_now
        assert row.on_time <= row.closed and row.reworked <= row.handled
    total = figures(report.total)
    for rows in (report.by_grid, report.by_category, report.by_worker):
        assert tuple(map(sum, zip(*(figures(r) for r in rows), strict=True))) == total


async def test_month_figures_per_grid_category_worker_and_total(chat: Chat) -> None:
    await build_month(chat)
    report = await month_report(chat)
    assert report.start == local(2026, 11, 1) and report.end == local(2026, 11, 27, 10, 5)

    # The November cohort is #2-#8 (#1 came in October; #2 at 00:30 local on 1 November), where each
    # stands now: #3 #4 #5 fixed, #2 #7 #8 in hand, #6 referred.
    total = report.total
    assert figures(total) == (7, 3, 3, 0, 1, 0, 0, 1, 3, 1, 2, 1, 2, 0)
    assert total.close_rate == pytest.approx(0.5)  # 3 of the 6 that were ours
    assert total.on_time_rate == pytest.approx(1 / 3)  # #3; #4 late, #5 reworked
    assert total.rework_rate == pytest.approx(1 / 3)  # #5 of #3 #4 #5
    assert total.satisfaction == pytest.approx(2 / 3)
    assert total.median_hours == pytest.approx(2.5)  # 2, 2.5, 46.5

    grid = by_key(report.by_grid)
    assert list(grid) == ["G1", "G2", "G3", "G4"]  # every grid, in the community's order
    assert grid["G1"].name == "第一网格（幸福里北区）"
    assert figures(grid["G1"]) == (3, 2, 1, 0, 0, 0, 0, 1, 2, 0, 1, 0, 1, 0)
    assert figures(grid["G2"]) == (2, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0)
    assert figures(grid["G3"]) == (2, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0)
    assert figures(grid["G4"]) == (0,) * 14
    assert grid["G1"].on_time_rate == pytest.approx(0.5) and grid["G1"].rework_rate == 0
    assert grid["G2"].on_time_rate == 0 and grid["G2"].rework_rate == 1  # reopened counts against
    assert grid["G1"].satisfaction == 1 and grid["G2"].satisfaction == pytest.approx(0.5)
    assert grid["G3"].on_time_rate is None and grid["G3"].satisfaction is None  # nothing to rate it on
    assert grid["G3"].close_rate == 0  # #7 is ours and open; #6 was not ours
    assert [grid[g].median_hours for g in ("G1", "G2", "G3", "G4")] == [
        pytest.approx(24.25),
        pytest.approx(2.5),  # to the resolution after the rework
        None,
        None,
    ]

    category = by_key(report.by_category)
    assert list(category)[:5] == ["poster", "garbage", "mosquito", "pests", "sewage"]
    assert category["poster"].name == "乱张贴/小广告"
    assert figures(category["poster"]) == (3, 2, 0, 0, 1, 0, 0, 1, 2, 1, 2, 1, 0, 0)
    assert figures(category["garbage"]) == (2, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0)
    assert figures(category["sewage"]) == (1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0)
    assert figures(category["mosquito"]) == (1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert category["poster"].median_hours == pytest.approx(2.25)  # 2, 2.5: an even count
    assert category["garbage"].median_hours == pytest.approx(46.5)
    assert category["pests"].received == 0 and category["pests"].median_hours is None

    worker = by_key(report.by_worker)
    assert list(worker) == ["zhang", "wang", "zhao", "sun", "wu", "zheng"]
    assert worker["zhang"].name == "张伟"
    assert figures(worker["zhang"]) == figures(grid["G1"])
    assert figures(worker["zhao"]) == figures(grid["G2"])
    assert figures(worker["wu"]) == (1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert figures(worker["zheng"]) == (1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0)
    assert_states_add_up(report)


async def build_more(chat: Chat) -> None:
    """After ``build_month``, on 27 November: a reopened case still in hand, a merged one, a report
    withdrawn to follow an open case, one in triage and one declared invalid."""
    clock = chat.clock
    clock.now = local(2026, 11, 27, 10, 10)
    await chat.send("zhang", "完成 2 已清运")  # #2 fixed …
    await chat.send("小吴", "2")
    await chat.send("小吴", "没有清干净")  # … and reopened: back in hand, not 办结
    await chat.send("小钱", "3号楼有小广告")  # 9: G1 poster zhang
    await chat.send("zhang", "重复 9 3")  # 9: merged by staff (#3 is finished, so 重复 still closes it)
    await chat.send("小冯", "15号楼下水道堵了")  # 10: same place and category as the open #7 …
    await chat.send("小冯", "关注")  # … the reporter withdraws it and follows #7
    await chat.send("小郑", "有只老鼠跑来跑去")  # 11: no place …
    await chat.send("小郑", "不知道")  # … so it goes to the admins' triage queue
    await chat.send("小何", "10号楼有积水")  # 12: G2 mosquito zhao
    await chat.send("zhao", "无效 12 现场没有积水")
    clock.now = local(2026, 11, 27, 11, 0)


async def test_states_add_up_with_reopened_merged_withdrawn_triaged_and_invalid_cases(chat: Chat) -> None:
    await build_month(chat)
    await build_more(chat)
    async with chat.services.sessions() as session:
        got = {c.id: (c.status, c.close_reason) for c in (await session.scalars(select(Case))).all()}
    assert got[2] == (CaseStatus.ASSIGNED, None)
    assert got[9] == (CaseStatus.CLOSED, "duplicate") and got[10] == (CaseStatus.CLOSED, "duplicate")
    assert got[11] == (CaseStatus.NEW, None) and got[12] == (CaseStatus.CLOSED, "invalid")

    report = await month_report(chat)
    total = report.total
    # #2-#12: 办结 #3 #4 #5; 在办 #2 (reopened) #7 #8; 待分拣 #11; 转交 #6; 合并 #9 #10; 无效 #12
    assert (total.received, total.closed, total.in_hand, total.triage) == (11, 3, 3, 1)
    assert (total.referred, total.merged, total.invalid) == (1, 2, 1)
    assert total.close_rate == pytest.approx(3 / 7)  # 11 received, 4 of them not ours to fix
    assert (total.handled, total.reworked) == (4, 2)  # #2 was handed in and reopened: rework
    assert total.rework_rate == pytest.approx(0.5)
    assert (total.ratings_good, total.ratings_bad) == (2, 2)
    assert_states_add_up(report)

    # The chat's 统计 shows the same figures as the report (both from ``compute``)
    text = chat.to(await chat.send("chen", "统计"), "chen")[0]
    for words in ("受理 11 件", "办结 3", "在办 3", "待分拣 1", "转交 1", "合并 2", "无效 1", "结案率 42.9%"):
        assert words in text, (words, text)


async def test_other_periods_and_a_leaders_grids(chat: Chat) -> None:
    await build_month(chat)
    week = await month_report(chat, "week")  # from Monday 23 November: #3-#8; #2 is older and open
    assert figures(week.total) == (6, 3, 2, 0, 1, 0, 0, 1, 3, 1, 2, 1, 1, 1)
    assert week.total.median_hours == pytest.approx(2.5)
    assert_states_add_up(week)
    day = await month_report(chat, "day")  # Friday 27 November: one new case, nothing finished
    assert (day.total.received, day.total.closed, day.total.satisfaction) == (1, 0, None)
    assert (day.total.in_hand, day.total.overdue_now, day.total.backlog) == (1, 0, 2)  # #2 #7 from before
    quarter = await month_report(chat, "quarter")
    assert (quarter.total.received, quarter.total.closed) == (8, 4)

    community = chat.services.community
    async with chat.services.sessions() as session:
        october = await stats.compute(
            session, community, local(2026, 10, 1), local(2026, 11, 1), local(2026, 11, 1), period="month"
        )
        assert october.total.received == 1  # #2 is a November case locally
        leader = await stats.compute(
            session,
            community,
            local(2026, 11, 1),
            chat.clock.now,
            chat.clock.now,
            grids=["G2", "G3"],
        )
    assert [r.key for r in leader.by_grid] == ["G2", "G3"]
    assert [r.key for r in leader.by_worker] == ["zhao", "sun", "wu", "zheng"]
    assert (leader.total.received, leader.total.closed, leader.total.overdue_now) == (4, 1, 1)
    assert leader.total.satisfaction == pytest.approx(0.5)
    assert_states_add_up(leader)

    as_dict = week.as_dict()
    assert set(as_dict) >= {"period", "start", "end", "by_grid", "by_category", "by_worker", "total"}
    assert as_dict["start"] == "2026-11-23T00:00:00+08:00" and as_dict["period"] == "week"
    json.dumps(as_dict, ensure_ascii=False)


async def test_stats_chat_command_for_admins_and_a_leaders_own_grids(chat: Chat) -> None:
    await build_month(chat)
    summary = chat.to(await chat.send("chen", "统计"), "chen")
    assert len(summary) == 1
    text = summary[0]
    for words in (
        "幸福社区",
        "本月（11月1日起）",
        "受理 7 件：办结 3，在办 3，待分拣 0，转交 1，合并 0，无效 0",
        "结案率 50.0%",
        "按期处置率 33.3%",
        "返工率 33.3%",
        "满意率 66.7%",
        "中位数 2.5 小时",
        "在办超期 2 件",
        "第一网格（幸福里北区）：超期 1 件",
        "第三网格（和平新村）：超期 1 件",
    ):
        assert words in text, (words, text)
    assert "第二网格（幸福里南区）：超期" not in text
    refused = chat.to(await chat.send("zhang", "/stats"), "zhang")
    assert refused and "受理" not in refused[0]

    # 周杰 leads G3 and G4: his 统计 is theirs, not the community's
    mine = chat.to(await chat.send("zhou", "统计"), "zhou")[0]
    assert "（第三网格（和平新村）、第四网格" in mine
    assert "受理 2 件：办结 0，在办 1，待分拣 0，转交 1" in mine and "满意率 暂无" in mine
    assert "第一网格" not in mine
    li = chat.to(await chat.send("li", "统计"), "li")[0]
    assert "受理 5 件" in li and "第三网格" not in li  # G1 and G2


async def test_an_empty_database_gives_zeros_and_no_rates(chat: Chat) -> None:
    report = await month_report(chat)
    assert report.total.received == 0 and report.total.on_time_rate is None
    assert report.total.median_hours is None and report.total.satisfaction is None
    assert len(report.by_grid) == 4 and all(r.received == 0 for r in report.by_worker)


# -- the command line -----------------------------------------------------------------------------------


@pytest.fixture
async def cli_db(tmp_path: Path) -> dict[str, str]:
    """A SQLite file with the November cases, made through the conversation at fixed 2026 times."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        community = load_community(None)
        async with sessions.begin() as session:
            await sync_community(session, community)
        clock = Clock()
        services = Services(
            sessions=sessions, community=community, channels=frozenset({"console"}), clock=clock
        )
        await build_month(Chat(services, conversation(services), RecordingSender("console"), clock))
    finally:
        await engine.dispose()
    return {"OUTREACH_DATABASE_URL": url}


def test_cli_stats_json_csv_and_table(cli_db: dict[str, str]) -> None:
    result = run(["stats", "--format", "json", "--as-of", "2026-11-26"], env=cli_db)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode("utf-8")
    assert "第一网格" in text  # real characters, not \u escapes
    assert len(text.splitlines()) == 1
    report = json.loads(text)
    assert report["period"] == "month"
    assert (report["start"], report["end"]) == ("2026-11-01T00:00:00+08:00", "2026-11-27T00:00:00+08:00")
    assert {"by_grid", "by_category", "by_worker", "total"} <= set(report)
    total = report["total"]
    # up to the end of 26 November: #8 (27 November) is not in it
    assert (total["received"], total["closed"], total["on_time_rate"], total["rework_rate"]) == (
        6,
        3,
        0.3333,
        0.3333,
    )
    assert (total["in_hand"], total["referred"], total["close_rate"]) == (2, 1, 0.6)
    assert total["satisfaction"] == pytest.approx(0.6667) and total["median_hours_to_close"] == 2.5
    assert total["overdue_now"] == 2
    g2 = next(r for r in report["by_grid"] if r["key"] == "G2")
    assert (g2["name"], g2["received"], g2["rework_rate"], g2["satisfaction"]) == (
        "第二网格（幸福里南区）",
        1,
        1.0,
        0.5,
    )

    week = json.loads(
        run(["stats", "--period", "week", "--format", "json", "--as-of", "2026-11-29"], env=cli_db).stdout
    )
    assert week["start"] == "2026-11-23T00:00:00+08:00" and week["total"]["received"] == 6

    out = run(["stats", "--format", "csv", "--as-of", "2026-11-26"], env=cli_db)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.startswith("\ufeff".encode()) and b"\r\n" in out.stdout  # Excel and WPS: BOM, CRLF
    rows = list(csv.DictReader(io.StringIO(out.stdout.decode("utf-8-sig"))))
    assert list(rows[0])[:6] == ["分组", "编号", "名称", "受理", "办结", "在办"]
    assert {r["分组"] for r in rows} == {"网格", "类别", "人员", "合计"}
    zhang = next(r for r in rows if r["分组"] == "人员" and r["编号"] == "zhang")
    assert (zhang["名称"], zhang["受理"], zhang["办结"], zhang["在办"], zhang["当前超期"]) == (
        "张伟",
        "3",
        "2",
        "1",
        "1",
    )
    g4 = next(r for r in rows if r["分组"] == "网格" and r["编号"] == "G4")
    assert g4["按期处置率"] == "" and g4["办结时长中位数(小时)"] == ""
    (total_row,) = [r for r in rows if r["分组"] == "合计"]
    assert total_row["受理"] == "6" and total_row["按期处置率"] == "0.3333"

    shown = run(["stats", "--as-of", "2026-11-26"], env=cli_db)
    assert shown.returncode == 0, shown.stderr.decode()
    lines = shown.stdout.decode("utf-8").splitlines()
    assert "本月统计" in lines[0] and "2026-11-01 00:00" in lines[0]
    header = next(line for line in lines if "按期处置率" in line)
    for column in (
        "名称",
        "受理",
        "办结",
        "在办",
        "待分拣",
        "转交",
        "合并",
        "无效",
        "结案率",
        "返工率",
        "满意率",
    ):
        assert column in header
    g1 = next(line for line in lines if line.strip().startswith("第一网格"))
    assert g1.split()[1:4] == ["3", "2", "1"]

    bad = run(["stats", "--as-of", "26/11/2026"], env=cli_db)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr.decode("utf-8")


def test_cli_stats_xlsx_opens_with_chinese_headers(cli_db: dict[str, str], tmp_path: Path) -> None:
    from openpyxl import load_workbook

    target = tmp_path / "统计.xlsx"
    result = run(["stats", "--format", "xlsx", "--as-of", "2026-11-26", "--output", str(target)], env=cli_db)
    assert result.returncode == 0, result.stderr.decode()
    sheet = load_workbook(target).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("分组", "编号", "名称", "受理", "办结")
    total = next(r for r in rows if r[0] == "合计")
    assert total[3:5] == (6, 3)


def test_cli_stats_and_the_chat_show_the_same_figures(cli_db: dict[str, str]) -> None:
    import asyncio

    cli = json.loads(run(["stats", "--format", "json", "--as-of", "2026-11-27"], env=cli_db).stdout)

    async def ask() -> str:
        engine = create_engine(cli_db["OUTREACH_DATABASE_URL"])
        try:
            clock = Clock()
            clock.now = local(2026, 11, 27, 23, 59)
            services = Services(
                sessions=session_factory(engine),
                community=load_community(None),
                channels=frozenset({"console"}),
                clock=clock,
            )
            chat = Chat(services, conversation(services), RecordingSender("console"), clock)
            return chat.to(await chat.send("chen", "统计"), "chen")[0]
        finally:
            await engine.dispose()

    text = asyncio.run(ask())
    total = cli["total"]
    shown = {
        "受理": f"受理 {total['received']} 件",
        "办结": f"办结 {total['closed']}，",
        "在办": f"在办 {total['in_hand']}，",
        "转交": f"转交 {total['referred']}，",
        "结案率": f"结案率 {total['close_rate'] * 100:.1f}%",
        "按期处置率": f"按期处置率 {total['on_time_rate'] * 100:.1f}%",
        "返工率": f"返工率 {total['rework_rate'] * 100:.1f}%",
        "满意率": f"满意率 {total['satisfaction'] * 100:.1f}%",
        "超期": f"在办超期 {total['overdue_now']} 件",
    }
    for name, words in shown.items():
        assert words in text, (name, words, text)
    assert total["received"] == 7


def test_cli_stats_columns_line_up_with_chinese_names(cli_db: dict[str, str]) -> None:
    from handlers.cases.cli_stats import width

    lines = run(["stats", "--as-of", "2026-11-26"], env=cli_db).stdout.decode("utf-8").splitlines()
    block = lines[lines.index("按网格") + 1 : lines.index("按类别") - 1]
    assert len(block) == 5  # header and four grids
    assert len({width(line) for line in block}) == 1  # right-aligned numbers end in the same column


def test_cli_export_open311(cli_db: dict[str, str]) -> None:
    result = run(["export", "--format", "open311"], env=cli_db)
    assert result.returncode == 0, result.stderr.decode()
    assert "小广告" in result.stdout.decode("utf-8")
    requests = json.loads(result.stdout)
    assert [r["service_request_id"] for r in requests] == [str(n) for n in range(1, 9)]
    fields = {
        "service_request_id",
        "status",
        "status_notes",
        "service_code",
        "service_name",
        "agency_responsible",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "lat",
        "long",
        "description",
        "jurisdiction_id",  # issue 15: the case's community (its code)
    }
    assert all(set(r) == fields for r in requests)
    assert {r["jurisdiction_id"] for r in requests} == {"C1"}
    one = {r["service_request_id"]: r for r in requests}
    assert one["3"]["status"] == "closed" and one["3"]["status_notes"] == "已办结：已清理"
    assert one["3"]["service_code"] == "poster" and one["3"]["service_name"] == "乱张贴/小广告"
    assert one["3"]["agency_responsible"] == "第一网格（幸福里北区）"
    assert one["3"]["address"] == "3号楼" and one["3"]["description"] == "3号楼有小广告"
    assert one["3"]["requested_datetime"] == "2026-11-23T09:30:00+08:00"
    assert one["3"]["updated_datetime"] == "2026-11-23T11:30:00+08:00"  # closing time: the 满意 reply
    assert one["3"]["expected_datetime"].endswith("+08:00")
    assert one["1"]["status"] == "closed" and one["1"]["status_notes"].startswith("已处理，待居民确认")
    assert one["1"]["updated_datetime"] == "2026-11-10T10:00:00+08:00"
    assert one["6"]["status_notes"] == "不属于社区处理范围，已转交：城管执法队"
    assert one["2"]["status"] == "open" and one["2"]["status_notes"] == "已派单"
    assert one["2"]["requested_datetime"] == "2026-11-01T00:30:00+08:00"
    assert one["7"]["service_code"] == "sewage" and one["7"]["lat"] is None

    opened = json.loads(run(["export", "--format", "open311", "--status", "open"], env=cli_db).stdout)
    assert [r["service_request_id"] for r in opened] == ["2", "7", "8"]
    closed = json.loads(run(["export", "--status", "closed"], env=cli_db).stdout)
    assert [r["service_request_id"] for r in closed] == ["1", "3", "4", "5", "6"]


def test_cli_export_of_an_empty_database_is_an_empty_array(tmp_path: Path) -> None:
    env = {"OUTREACH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"}
    result = run(["export", "--format", "open311"], env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == []
