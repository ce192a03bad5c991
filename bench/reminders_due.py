"""How long one day's due reminders take with 1,000,000 enrolled children and 200,000 follow-up patients,
on SQLite and on PostgreSQL.

    python bench/reminders_due.py [--children 1000000] [--followups 200000] [--sqlite-only|--pg-only]

Populates a fresh SQLite file and a fresh PostgreSQL database (as tests/conftest.py creates them: the
server at OUTREACH_TEST_PG_URL or 127.0.0.1:5432, database dropped afterwards unless --keep) through the
Alembic schema, bulk-inserting with executemany (SQLite) and COPY (PostgreSQL): every child has one
pending reminder (09:00 local on a day of the coming year) and one already sent; every follow-up patient
has one pending reminder in the coming 90 days. Then, for day 0, it times

  1. the job's query: every pending reminder due by the end of the day (index ix_rem_reminders_status_due),
  2. one claim batch as the job runs it (LIMIT 200 … FOR UPDATE SKIP LOCKED),
  3. the whole job for the day (handlers.reminders.jobs.send_due: claim, render, outbox rows, commit),

and prints EXPLAIN for the query. The figure the issue asks about is (1): under 2 s on both backends.
Populating takes a few minutes; progress is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.engine import make_url

from handlers.community.model import load_community
from handlers.kernel.context import Services
from handlers.reminders.config import ReminderSettings
from handlers.reminders.jobs import due_query, send_due
from storage.database import create_engine, session_factory
from storage.migrate import upgrade

PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2027, 3, 1)
CHUNK = 100_000
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def at9(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=TZ).astimezone(UTC)


def sqlite_dt(value: datetime | None) -> str | None:
    # the format SQLAlchemy's SQLite DATETIME stores (UTCDateTime hands it naive UTC)
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def chunks(n: int) -> Iterator[range]:
    for start in range(0, n, CHUNK):
        yield range(start, min(n, start + CHUNK))


# -- the rows ----------------------------------------------------------------------------------------


def child_rows(ids: range) -> list[tuple[Any, ...]]:
    return [(i + 1, f"娃{i}", DAY0 - timedelta(days=i % 2000), NOW) for i in ids]


def child_reminder_rows(ids: range, children: int) -> list[tuple[Any, ...]]:
    rows = []
    for i in ids:
        child = i + 1
        pending_day = DAY0 + timedelta(days=i % 365)
        sent_day = DAY0 - timedelta(days=1 + i % 365)
        for n, (day, status, sent_at) in enumerate(
            ((pending_day, "pending", None), (sent_day, "sent", at9(sent_day)))
        ):
            rows.append(
                (
                    2 * i + n + 1,
                    "vaccine",
                    child,
                    None,
                    day,
                    0,
                    False,
                    json.dumps([["DTaP", 2]]),
                    at9(day),
                    at9(day) + timedelta(days=3),
                    status,
                    f"c{child}:{day.isoformat()}:0",
                    1 if sent_at else 0,
                    sent_at,
                    NOW,
                )
            )
    return rows


def followup_rows(ids: range, offset: int) -> list[tuple[Any, ...]]:
    programmes = ("hypertension", "diabetes_t2", "elderly_65", "hypertension")
    return [
        (
            i + 1,
            offset + i + 1,
            offset + i + 1,
            programmes[i % 4],
            90,
            DAY0 + timedelta(days=i % 90),
            "active",
            "doc",
            NOW,
        )
        for i in ids
    ]


def followup_reminder_rows(ids: range, offset: int) -> list[tuple[Any, ...]]:
    rows = []
    for i in ids:
        day = DAY0 + timedelta(days=i % 90)
        rows.append(
            (
                offset + i + 1,
                "followup",
                None,
                i + 1,
                day,
                0,
                False,
                "[]",
                at9(day),
                at9(day) + timedelta(days=3),
                "pending",
                f"f{i + 1}:{day.isoformat()}:0",
                0,
                None,
                NOW,
            )
        )
    return rows


FOLLOWUP_COLUMNS = (
    "id, resident_id, recipient_id, programme, interval_days, next_due, status, enrolled_by, created_at"
)
REMINDER_COLUMNS = (
    "id, kind, child_id, followup_id, for_date, offset_days, postponed, doses, due_at, expires_at, "
    "status, key, attempts, sent_at, created_at"
)


def day0_children(children: int) -> list[int]:
    """The children whose pending reminder falls on day 0 (they get a guardian who can be reached)."""
    return [i + 1 for i in range(0, children, 365)]


# -- SQLite ------------------------------------------------------------------------------------------


def populate_sqlite(path: Path, children: int, followups: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()

    def conv(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            sqlite_dt(v) if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v
            for v in row
        )

    with db:
        residents = [
            (n, f"居民{n}", sqlite_dt(NOW), 0) for n in range(1, followups + len(day0_children(children)) + 1)
        ]
        db.executemany(
            "INSERT INTO residents (id, display_name, created_at, blocked) VALUES (?, ?, ?, ?)", residents
        )
        db.executemany(
            "INSERT INTO resident_identities (channel, external_id, resident_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            [("console", f"u{n}", n, sqlite_dt(NOW)) for n, *_ in residents],
        )
        for ids in chunks(children):
            db.executemany(
                "INSERT INTO rem_children (id, nickname, birth_date, created_at) VALUES (?, ?, ?, ?)",
                [conv(r) for r in child_rows(ids)],
            )
            db.executemany(
                f"INSERT INTO rem_reminders ({REMINDER_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                [conv(r) for r in child_reminder_rows(ids, children)],
            )
            print(f"  sqlite: {ids.stop:,} children ({time.perf_counter() - started:.0f} s)", flush=True)
        guardians = day0_children(children)
        for k, child in enumerate(guardians):
            resident = followups + k + 1
            db.execute(
                "INSERT INTO rem_consents (id, resident_id, programme, text_version, channel, given_at) "
                "VALUES (?, ?, 'child_vaccination', 'v1', 'console', ?)",
                (k + 1, resident, sqlite_dt(NOW)),
            )
            db.execute(
                "INSERT INTO rem_guardians (child_id, resident_id, consent_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                (child, resident, k + 1, sqlite_dt(NOW)),
            )
        offset = 2 * children
        for ids in chunks(followups):
            db.executemany(
                f"INSERT INTO rem_followups ({FOLLOWUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [conv(r) for r in followup_rows(ids, 0)],
            )
            db.executemany(
                f"INSERT INTO rem_reminders ({REMINDER_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                [conv(r) for r in followup_reminder_rows(ids, offset)],
            )
            print(
                f"  sqlite: {ids.stop:,} follow-up patients ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    db.execute("ANALYZE")
    db.close()


# -- PostgreSQL --------------------------------------------------------------------------------------


async def populate_pg(url: str, children: int, followups: int) -> None:
    import asyncpg

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    started = time.perf_counter()
    try:
        n_residents = followups + len(day0_children(children))
        await conn.copy_records_to_table(
            "residents",
            records=[(n, f"居民{n}", NOW, False) for n in range(1, n_residents + 1)],
            columns=["id", "display_name", "created_at", "blocked"],
        )
        await conn.copy_records_to_table(
            "resident_identities",
            records=[("console", f"u{n}", n, NOW) for n in range(1, n_residents + 1)],
            columns=["channel", "external_id", "resident_id", "created_at"],
        )
        columns = [c.strip() for c in REMINDER_COLUMNS.split(",")]
        for ids in chunks(children):
            await conn.copy_records_to_table(
                "rem_children",
                records=child_rows(ids),
                columns=["id", "nickname", "birth_date", "created_at"],
            )
            await conn.copy_records_to_table(
                "rem_reminders", records=child_reminder_rows(ids, children), columns=columns
            )
            print(f"  postgres: {ids.stop:,} children ({time.perf_counter() - started:.0f} s)", flush=True)
        guardians = day0_children(children)
        await conn.copy_records_to_table(
            "rem_consents",
            records=[
                (k + 1, followups + k + 1, "child_vaccination", "v1", "console", NOW)
                for k in range(len(guardians))
            ],
            columns=["id", "resident_id", "programme", "text_version", "channel", "given_at"],
        )
        await conn.copy_records_to_table(
            "rem_guardians",
            records=[(child, followups + k + 1, k + 1, NOW) for k, child in enumerate(guardians)],
            columns=["child_id", "resident_id", "consent_id", "created_at"],
        )
        offset = 2 * children
        for ids in chunks(followups):
            await conn.copy_records_to_table(
                "rem_followups",
                records=followup_rows(ids, 0),
                columns=[c.strip() for c in FOLLOWUP_COLUMNS.split(",")],
            )
            await conn.copy_records_to_table(
                "rem_reminders", records=followup_reminder_rows(ids, offset), columns=columns
            )
            print(
                f"  postgres: {ids.stop:,} follow-up patients ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        for table in ("residents", "rem_children", "rem_reminders", "rem_followups", "rem_consents"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# -- the measurements --------------------------------------------------------------------------------


async def measure(name: str, url: str) -> dict[str, float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    end_of_day = datetime.combine(DAY0 + timedelta(days=1), datetime.min.time(), TZ).astimezone(UTC)
    figures: dict[str, float] = {}
    try:
        async with sessions() as session:
            conn = await session.connection()
            if conn.dialect.name == "sqlite":
                explain = (
                    "EXPLAIN QUERY PLAN SELECT id FROM rem_reminders "
                    "WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, id"
                )
                plan = (await conn.exec_driver_sql(explain, (sqlite_dt(end_of_day),))).all()
            else:
                explain = (
                    "EXPLAIN ANALYZE SELECT id FROM rem_reminders WHERE status = 'pending' AND due_at <= $1 "
                    "ORDER BY due_at, id"
                )
                plan = (await conn.exec_driver_sql(explain, (end_of_day,))).all()
            print(f"  {name} EXPLAIN:")
            for row in plan:
                print("    " + " | ".join(str(c) for c in row))
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                ids = (await session.scalars(due_query(end_of_day))).all()
                best = min(best, time.perf_counter() - started)
            figures["query_s"], figures["due_rows"] = best, len(ids)
            await session.rollback()
        async with sessions.begin() as session:
            started = time.perf_counter()
            batch = (
                await session.scalars(due_query(end_of_day).limit(200).with_for_update(skip_locked=True))
            ).all()
            figures["claim_batch_s"] = time.perf_counter() - started
            figures["claimed"] = len(batch)
        community = load_community(None)
        services = Services(
            sessions=sessions,
            community=community,
            channels=frozenset({"console"}),
            clock=lambda: datetime(DAY0.year, DAY0.month, DAY0.day, 20, tzinfo=TZ).astimezone(UTC),
        )
        started = time.perf_counter()
        written = await send_due(services, ReminderSettings(batch_size=200))
        figures["job_s"], figures["job_messages"] = time.perf_counter() - started, written
        async with sessions() as session:
            figures["total_reminders"] = int(
                await session.scalar(text("SELECT count(*) FROM rem_reminders")) or 0
            )
    finally:
        await engine.dispose()
    return figures


async def run_sqlite(children: int, followups: int) -> dict[str, float]:
    path = Path(tempfile.gettempdir()) / "outreach_bench_reminders.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    print(f"SQLite {path}: populating …", flush=True)
    started = time.perf_counter()
    populate_sqlite(path, children, followups)
    print(f"  populated in {time.perf_counter() - started:.0f} s", flush=True)
    return await measure("sqlite", url)


async def run_pg(children: int, followups: int, keep: bool) -> dict[str, float]:
    import asyncpg

    u = make_url(PG_URL)
    name = f"outreach_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = u.set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        print(f"PostgreSQL database {name}: populating …", flush=True)
        started = time.perf_counter()
        await populate_pg(url, children, followups)
        print(f"  populated in {time.perf_counter() - started:.0f} s", flush=True)
        return await measure("postgres", url)
    finally:
        if not keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--followups", type=int, default=200_000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if not args.pg_only:
        results["sqlite"] = await run_sqlite(args.children, args.followups)
    if not args.sqlite_only:
        results["postgres"] = await run_pg(args.children, args.followups, args.keep)
    print()
    print(f"{args.children:,} children, {args.followups:,} follow-up patients; day {DAY0}")
    for name, f in results.items():
        print(
            f"{name:9s} reminders={f['total_reminders']:,.0f}  due that day={f['due_rows']:,.0f}  "
            f"query={f['query_s'] * 1000:.1f} ms  claim batch(200)={f['claim_batch_s'] * 1000:.1f} ms  "
            f"whole job={f['job_s']:.2f} s ({f['job_messages']:,.0f} messages)  "
            f"[{'OK' if f['query_s'] < 2 else 'SLOW'}: under 2 s]"
        )


if __name__ == "__main__":
    asyncio.run(main())
