"""The periodic escalation scan with a million cases: it must read only the due ones, through the index
on ``cases.next_alarm_at``.

Target (issue "Performance"): with 1,000,000 cases (100,000 open) one scan takes under 1 s, on SQLite
and on PostgreSQL. The script fills a SQLite file and a fresh PostgreSQL database (created and
dropped here, like tests/conftest.py does) with a realistic mix: 900,000 finished cases over two
years (confirmed, closed not-ours / duplicate / invalid, some reworked and rated), 100,000 open
ones (new in triage, assigned, accepted, in progress) whose next alarm is spread over the next three
weeks, about 200 of them due now, and one terminal event per finished case. Then, with the sample
community and a fixed clock, it times ``handlers.cases.deadlines.scan``: once with the ~200 due cases and
once with nothing due, prints the query plan of the scan's query, and, for scale, the time of the
month's statistics (``handlers.cases.stats.compute``) on the same data.

Run from the repository root:
    python bench/escalation_scan.py [--cases 1000000] [--open 100000] [--due 200]
                                    [--backend sqlite --backend postgres] [--keep]
PostgreSQL: OUTREACH_TEST_PG_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/test (the server
must let that user create databases).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.support.scratch_db import scratch_postgres
from handlers.cases import deadlines, stats
from handlers.cases.models import OPEN_STATUSES, Case, CaseStatus
from handlers.community.model import Community, load_community
from handlers.community.store import sync_community
from handlers.kernel.context import Services
from storage.database import create_engine, session_factory
from storage.migrate import upgrade

PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)  # a Tuesday
CHUNK = 50_000
TARGET_S = 1.0

CASE_COLUMNS = (
    "id",
    "status",
    "category_code",
    "categories",
    "confidence",
    "text",
    "location_text",
    "building",
    "grid_code",
    "assignee_id",
    "in_triage",
    "urgent",
    "time_limit_hours",
    "clock_started_at",
    "due_at",
    "alarm_stage",
    "next_alarm_at",
    "close_reason",
    "referral",
    "rating",
    "reopen_count",
    "channel",
    "reporter_external",
    "resolution_note",
    "created_at",
    "updated_at",
    "assigned_at",
    "accepted_at",
    "resolved_at",
    "closed_at",
)
EVENT_COLUMNS = ("case_id", "at", "actor_type", "actor_id", "action", "from_status", "to_status", "data")
TIME_COLUMNS = tuple(c for c in CASE_COLUMNS if c.endswith("_at"))


# -- data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handler:
    grid: str
    staff: str
    category: str
    building: str


def handlers_of(community: Community) -> list[Handler]:
    """(grid, staff, category, a building) for every worker's category, and the leader where a grid
    has no worker: who real cases go to."""
    out = []
    codes = [c.code for c in community.categories if c.enabled]
    for grid in community.grids.values():
        building = str(grid.buildings[0]).split("-")[0] if grid.buildings else ""
        if grid.workers:
            out += [Handler(grid.code, w.staff, c, building) for w in grid.workers for c in w.categories]
        elif grid.leader:
            out += [Handler(grid.code, grid.leader, c, building) for c in codes]
    return out


Rows = list[tuple[Any, ...]]


def sqlite_time(moment: datetime) -> str:
    """As ``UTCDateTime`` stores a time on SQLite: naive UTC text with microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def generate(
    community: Community, n_cases: int, n_open: int, n_due: int, sqlite: bool
) -> Iterator[tuple[Rows, Rows]]:
    """Chunks of (case rows, event rows) as tuples in ``CASE_COLUMNS`` / ``EVENT_COLUMNS`` order, in the
    driver's terms (JSON as text, statuses as strings; times as SQLite stores them, or aware for
    asyncpg). Open cases are the last ``n_open`` ids; ``n_due`` of them, spread evenly, have their next
    alarm in the last 50 minutes."""
    rng = random.Random(20261124)
    people = handlers_of(community)
    limits = community.category_limits
    first_open = n_cases - n_open + 1
    due_every = max(1, n_open // max(1, n_due))
    cases: Rows = []
    events: Rows = []
    for number in range(1, n_cases + 1):
        who = rng.choice(people)
        limit = limits.get(who.category, deadlines.DEFAULT_LIMIT_HOURS)
        row: dict[str, Any] = {
            "id": number,
            "category_code": who.category,
            "categories": json.dumps([who.category]),
            "confidence": 0.8,
            "text": f"{who.building}号楼 {community.category_names.get(who.category, '')}",
            "location_text": f"{who.building}号楼",
            "building": who.building,
            "grid_code": who.grid,
            "assignee_id": who.staff,
            "in_triage": False,
            "urgent": rng.random() < 0.03,
            "time_limit_hours": limit,
            "alarm_stage": 0,
            "next_alarm_at": None,
            "close_reason": None,
            "referral": None,
            "rating": None,
            "reopen_count": 0,
            "channel": "console",
            "reporter_external": f"resident{rng.randrange(20_000)}",
            "resolution_note": None,
            "accepted_at": None,
            "resolved_at": None,
            "closed_at": None,
        }
        if number < first_open:  # finished: over the last two years
            created = NOW - timedelta(days=rng.uniform(21, 730))
            row.update(status=CaseStatus.CONFIRMED, created_at=created)
            row["clock_started_at"] = row["assigned_at"] = created + timedelta(minutes=rng.uniform(0, 5))
            row["due_at"] = created + timedelta(hours=limit * 2.5)
            done = created + timedelta(hours=rng.lognormvariate(1.6, 1.0))
            roll = rng.random()
            if roll < 0.10:
                reason = rng.choice(("not_ours", "not_ours", "duplicate", "invalid"))
                row.update(status=CaseStatus.CLOSED, close_reason=reason, closed_at=done)
                row["referral"] = "城管执法队" if reason == "not_ours" else None
                action, to = f"closed_{reason}", CaseStatus.CLOSED
            else:
                row["accepted_at"] = created + timedelta(minutes=rng.uniform(5, 60))
                row.update(resolved_at=done, resolution_note="已处理")
                row["closed_at"] = done + timedelta(days=rng.uniform(0.1, 3))
                row["rating"] = rng.choices(("good", "bad", None), (45, 5, 50))[0]
                row["reopen_count"] = 1 if row["rating"] == "bad" else 0
                action, to = "resolved", CaseStatus.RESOLVED
            row["updated_at"] = row["closed_at"]
            at = sqlite_time(done) if sqlite else done
            events.append((number, at, "staff", who.staff, action, CaseStatus.ACCEPTED.value, to.value, "{}"))
        else:  # open: mostly reported in the last days, the next rung within the next three weeks
            created = NOW - timedelta(hours=min(1 + rng.expovariate(1 / 30), 21 * 24))
            status = rng.choices(
                (CaseStatus.NEW, CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS),
                (5, 45, 30, 20),
            )[0]
            due_now = (number - first_open) % due_every == due_every // 2
            if due_now and status == CaseStatus.NEW:
                status = CaseStatus.ASSIGNED
            row.update(status=status, created_at=created, updated_at=created, clock_started_at=created)
            row["assigned_at"] = created if status != CaseStatus.NEW else None
            if status == CaseStatus.NEW:
                row.update(in_triage=True, assignee_id=None)
            if status in (CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS):
                row["accepted_at"] = created + timedelta(minutes=30)
            row["due_at"] = created + timedelta(hours=limit * 2.5)
            if due_now:
                # due now: started this morning, the 50 % warning is just due
                row["clock_started_at"] = NOW - timedelta(hours=limit / 2 + 0.1)
                row["due_at"] = NOW + timedelta(hours=limit / 2)
                row["next_alarm_at"] = NOW - timedelta(minutes=rng.uniform(0, 50))
            else:
                row["alarm_stage"] = rng.choice((0, 0, 1, 1, 2))
                row["next_alarm_at"] = NOW + timedelta(hours=rng.uniform(1, 21 * 24))
        row["status"] = row["status"].value
        if sqlite:
            for column in TIME_COLUMNS:
                if row[column] is not None:
                    row[column] = sqlite_time(row[column])
        cases.append(tuple(row[c] for c in CASE_COLUMNS))
        if len(cases) == CHUNK:
            yield cases, events
            cases, events = [], []
    if cases:
        yield cases, events


# -- loading --------------------------------------------------------------------------------------------


async def load_sqlite(engine: AsyncEngine, chunks: Iterator[tuple[Rows, Rows]]) -> None:
    """One executemany per chunk and table, the values already in SQLite's stored form (a Core insert
    would run the type processors on every value: three times slower)."""

    def statement(table: str, columns: tuple[str, ...]) -> str:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"

    done = 0
    async with engine.begin() as conn:
        for cases, events in chunks:
            await conn.exec_driver_sql(statement("cases", CASE_COLUMNS), cases)
            if events:
                await conn.exec_driver_sql(statement("case_events", EVENT_COLUMNS), events)
            done += len(cases)
            if done % 100_000 == 0:
                print(f"    {done:>9,} cases", flush=True)
    # Part of the load: otherwise the first write after it (the scan) copies the whole WAL back.
    await engine.dispose()
    await asyncio.to_thread(checkpoint, str(engine.url.database))


def checkpoint(path: str) -> None:
    connection = sqlite3.connect(path)
    try:
        busy, *_ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the WAL checkpoint was blocked"
    finally:
        connection.close()


async def load_postgres(engine: AsyncEngine, chunks: Iterator[tuple[Rows, Rows]]) -> None:
    """COPY through asyncpg's copy_records_to_table."""
    done = 0
    async with engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for cases, events in chunks:
            await raw.copy_records_to_table("cases", records=cases, columns=CASE_COLUMNS)
            if events:
                await raw.copy_records_to_table("case_events", records=events, columns=EVENT_COLUMNS)
            done += len(cases)
            if done % 100_000 == 0:
                print(f"    {done:>9,} cases", flush=True)
        for table in ("cases", "case_events"):
            await conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )


# -- measuring ------------------------------------------------------------------------------------------


def scan_query() -> Any:
    """The statement ``deadlines.scan`` runs (same filter, order, batch and locking)."""
    return (
        select(Case)
        .where(Case.next_alarm_at <= NOW)
        .order_by(Case.next_alarm_at)
        .limit(deadlines.SCAN_BATCH)
        .with_for_update(skip_locked=True)
    )


async def explain(engine: AsyncEngine) -> list[str]:
    sql = str(scan_query().compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            return [str(r[-1]) for r in rows.all()]
        rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
        plan = [str(r[0]) for r in rows.all()]
        await conn.rollback()
        return plan


async def run_backend(name: str, url: str, community: Community, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {name}: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            await sync_community(session, community)
        print(f"  loading {args.cases:,} cases ({args.open:,} open, ~{args.due} due now) …", flush=True)
        started = time.perf_counter()
        chunks = generate(community, args.cases, args.open, args.due, sqlite=name == "sqlite")
        if name == "sqlite":
            await load_sqlite(engine, chunks)
        else:
            await load_postgres(engine, chunks)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        load_s = time.perf_counter() - started
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Case))
            opened = await session.scalar(select(func.count()).where(Case.status.in_(OPEN_STATUSES)))
            due = await session.scalar(select(func.count()).where(Case.next_alarm_at <= NOW))
        print(f"  loaded in {load_s:.0f} s: {total:,} cases, {opened:,} open, {due:,} due now", flush=True)

        plan = await explain(engine)
        print("  EXPLAIN of the scan query:")
        for line in plan:
            print(f"    {line}")

        services = Services(
            sessions=sessions,
            community=community,
            channels=frozenset({"console", "telegram", "wechat"}),
            clock=lambda: NOW,
        )
        started = time.perf_counter()
        woken = await deadlines.scan(services)
        busy_s = time.perf_counter() - started
        started = time.perf_counter()
        idle = await deadlines.scan(services)
        idle_s = time.perf_counter() - started
        print(f"  scan with due cases:  {busy_s * 1000:7.1f} ms, {woken} cases woken")
        print(f"  scan with none due:   {idle_s * 1000:7.1f} ms, {idle} cases woken")

        start, end = stats.period_bounds("month", NOW, community.timezone)
        started = time.perf_counter()
        async with sessions() as session:
            report = await stats.compute(session, community, start, end, NOW, period="month")
        stats_s = time.perf_counter() - started
        t = report.total
        print(
            f"  month statistics:     {stats_s * 1000:7.1f} ms "
            f"(received {t.received:,}, closed {t.closed:,}, overdue now {t.overdue_now:,})"
        )
        return {
            "backend": name,
            "load_s": load_s,
            "due": due,
            "woken": woken,
            "busy_s": busy_s,
            "idle_s": idle_s,
            "stats_s": stats_s,
            "index": any("ix_cases_next_alarm_at" in line for line in plan),
        }
    finally:
        await engine.dispose()


@asynccontextmanager
async def sqlite_database(keep: bool) -> AsyncIterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    path = folder / "scan.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        if keep:
            print(f"  (kept {path})")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            folder.rmdir()


@asynccontextmanager
async def postgres_database(keep: bool) -> AsyncIterator[str]:
    async with scratch_postgres("outreach_bench", keep=keep) as url:
        yield url


async def main_async(args: argparse.Namespace) -> int:
    community = load_community(None)
    results = []
    for backend in args.backend or ["sqlite", "postgres"]:
        database = sqlite_database if backend == "sqlite" else postgres_database
        async with database(args.keep) as url:
            results.append(await run_backend(backend, url, community, args))
    print(f"\n{args.cases:,} cases, {args.open:,} open; target: one scan < {TARGET_S:.0f} s")
    print(
        f"{'backend':<10} {'due':>5} {'woken':>6} {'scan (due)':>11} {'scan (idle)':>12} {'stats':>9} index"
    )
    ok = True
    for r in results:
        print(
            f"{r['backend']:<10} {r['due']:>5} {r['woken']:>6} {r['busy_s'] * 1000:>8.1f} ms "
            f"{r['idle_s'] * 1000:>9.1f} ms {r['stats_s'] * 1000:>6.0f} ms {'yes' if r['index'] else 'NO'}"
        )
        ok = ok and r["busy_s"] < TARGET_S and r["idle_s"] < TARGET_S and r["index"]
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=200)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file / PostgreSQL database")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
