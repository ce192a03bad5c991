"""A district on PostgreSQL: 30, then 300 communities (10 grids each) with the history of three years,
measured through the project's own code.

At 300 communities (scale 1) the district is the issue's: 3 million residents, 10 million cases, 200,000
open (bench/district_data.py generates it inside the server, INSERT … SELECT generate_series; every
community has the same size, so the district grows with N). The script makes its own database
(``bench_district_<pid>_…`` on the server at OUTREACH_TEST_PG_URL, default 127.0.0.1:5432, reached
through database ``test``) and drops it at the end (``--keep`` keeps it). At each N it
  1. writes the district file (one file per community, listed in a 街道 file) and times loading it as
     the app does (``bot.app.load_into``: ``load_street`` + ``sync_street`` in one transaction), loading
     it again unchanged (a restart), and reading it back (``stored_street``: what other processes do);
  2. generates the new communities' history (timed);
  3. times, per target (interactive < 100 ms, scans < 2 s, loading < 30 s):
     - routing a message: in memory (``Street.named_in`` + ``route_message``) and a whole turn
       (``Conversation.handle`` of a resident's report: identify, community, classify, locate, route,
       duplicates, numbering, acknowledgement, outbox), the median and the worst of ``--runs``;
     - the escalation scan (``handlers.cases.deadlines.scan``) with the due cases, and idle;
     - one day's due reminders (``handlers.reminders.jobs.send_due``);
     - 统计 for one community (its admin's chat command) and the month's figures for the district
       (``handlers.cases.stats.compute`` over every case, or the 街道 table where the tree has one);
     - the case lists of one community: a leader's open cases (任务) and the triage queue (待分拣), in
       the chat.
Every SQL statement the project runs during a measurement is recorded; for a measurement over its
target the slowest statement is shown with its EXPLAIN ANALYZE (``--explain`` shows it for all).

Run from the repository root:
    python bench/district_scale.py [--sizes 30 300] [--scale 0.01] [--runs 20] [--explain] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bench.district_data import (
    Sizes,
    Stage,
    admin_id,
    code,
    community_name,
    generate,
    staff_ids,
    write_district,
)
from bench.support.scratch_db import PG_URL, scratch_postgres
from bot.app import load_into
from handlers.cases import deadlines, stats
from handlers.community.routing import route_message
from handlers.community.store import community_ids, stored_street
from handlers.community.street import Street, load_street
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from handlers.kernel.inbound import Inbound
from handlers.reminders.config import ReminderSettings
from handlers.reminders.jobs import due_query, send_due
from storage.database import create_engine, session_factory
from storage.migrate import upgrade

TZ = ZoneInfo("Asia/Shanghai")
NOW0 = datetime(2026, 11, 24, 15, 0, tzinfo=TZ).astimezone(UTC)  # a Tuesday afternoon
DAY0 = date(2027, 3, 1)
INTERACTIVE_S, SCAN_S, LOAD_S = 0.1, 2.0, 30.0
CHANNELS = frozenset({"console", "telegram"})


# -- recording the project's SQL ----------------------------------------------------------------------------


@dataclass
class Statement:
    seconds: float
    sql: str
    params: Any


@dataclass
class Recorder:
    """Every statement run on the engine while ``on``, with its time."""

    on: bool = False
    statements: list[Statement] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
            started = conn.info["bench_started"].pop()
            if self.on and not many:
                self.statements.append(Statement(time.perf_counter() - started, sql, params))

    def slowest(self) -> Statement | None:
        return max(self.statements, key=lambda s: s.seconds, default=None)


@dataclass
class Figure:
    name: str
    seconds: float
    target: float
    note: str = ""
    worst: float | None = None
    slowest: Statement | None = None
    queries: int = 0
    statements: list[Statement] = field(default_factory=list)
    cpu: float | None = None  # this process's CPU time (the machine is shared: wall time waits for it)

    @property
    def ok(self) -> bool:
        return self.seconds < self.target


@dataclass
class Bench:
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    recorder: Recorder
    args: argparse.Namespace
    figures: dict[int, list[Figure]] = field(default_factory=dict)

    async def measure(
        self,
        n: int,
        name: str,
        target: float,
        work: Callable[[], Awaitable[Any]],
        note: Callable[[Any], str] | None = None,
    ) -> Any:
        self.recorder.statements.clear()
        self.recorder.on = True
        started, cpu = time.perf_counter(), time.process_time()
        try:
            result = await work()
        finally:
            self.recorder.on = False
        figure = Figure(name, time.perf_counter() - started, target, cpu=time.process_time() - cpu)
        figure.note = note(result) if note is not None else ""
        figure.slowest, figure.queries = self.recorder.slowest(), len(self.recorder.statements)
        figure.statements = list(self.recorder.statements)
        self.add(n, figure)
        return result

    def add(self, n: int, figure: Figure) -> None:
        self.figures.setdefault(n, []).append(figure)
        mark = "ok" if figure.ok else "MISSED"
        worst = f" (worst {figure.worst * 1000:.1f} ms)" if figure.worst is not None else ""
        if figure.cpu is not None:
            worst += f" (cpu {figure.cpu * 1000:.0f} ms)"
        print(
            f"  {figure.name:44s} {ms(figure.seconds)}{worst}  [{mark} < {figure.target:g} s]"
            f"  {figure.queries} queries {figure.note}",
            flush=True,
        )

    async def explain(self, figure: Figure) -> None:
        if figure.slowest is None:
            return
        groups: dict[str, list[float]] = {}
        for statement in figure.statements:
            groups.setdefault(" ".join(statement.sql.split())[:90], []).append(statement.seconds)
        print(f"    statements by total time ({figure.queries} in all):")
        for head, times in sorted(groups.items(), key=lambda g: -sum(g[1]))[:6]:
            total = sum(times) * 1000
            print(f"      {len(times):5d} × {total / len(times):7.2f} ms = {total:8.1f} ms  {head}")
        s = figure.slowest
        print(f"    slowest statement ({s.seconds * 1000:.1f} ms): {' '.join(s.sql.split())[:400]}")
        if not s.sql.lstrip().upper().startswith("SELECT"):
            return
        async with self.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            params = s.params if isinstance(s.params, tuple | list) else ()
            transaction = raw.transaction()
            await transaction.start()
            try:  # rolled back: the statement may lock or write
                rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {s.sql}", *params)
            finally:
                await transaction.rollback()
        for row in rows:
            print(f"      {row[0]}")


def ms(seconds: float) -> str:
    """Milliseconds, with three decimals below one."""
    return f"{seconds * 1000:10.3f} ms" if seconds < 0.001 else f"{seconds * 1000:10.1f} ms"


# -- measurements -------------------------------------------------------------------------------------------


def services_for(bench: Bench, street: Street, now: datetime) -> Services:
    return Services(
        sessions=bench.sessions,
        community=street.communities[0],
        street=street,
        channels=CHANNELS,
        clock=lambda: now,
    )


async def measure_loading(bench: Bench, n: int, path: Path) -> Street:
    async def parse() -> Street:
        return load_street(path)

    await bench.measure(n, "read and check the file (load_street)", LOAD_S, parse)
    street = await bench.measure(
        n, "load the district file (load_into)", LOAD_S, lambda: load_into(bench.engine, path)
    )
    await bench.measure(
        n, "load it again unchanged (load_into)", LOAD_S, lambda: load_into(bench.engine, path)
    )

    async def read_back() -> Street | None:
        async with bench.sessions() as session:
            return await stored_street(session)

    await bench.measure(n, "read it back (stored_street)", LOAD_S, read_back)
    return street


async def measure_routing(bench: Bench, n: int, street: Street, sizes: Sizes, now: datetime) -> None:
    runs = bench.args.runs
    picks = [(k * n) // runs for k in range(runs)]  # communities spread over the district
    texts = [f"{community_name(i)[1]}{1 + k % 30}号楼楼道里全是小广告" for k, i in enumerate(picks)]
    started = time.perf_counter()
    for i in set(picks):
        route_message(street.communities[i], texts[0])  # each community's classifier and locator, once
    warm = time.perf_counter() - started

    def in_memory() -> float:
        t0 = time.perf_counter()
        for t in texts:
            community = street.named_in(t)
            assert community is not None, t
            route_message(community, t)
        return (time.perf_counter() - t0) / len(texts)

    def named() -> float:
        t0 = time.perf_counter()
        for _ in range(20):
            for t in texts:
                street.named_in(t)
        return (time.perf_counter() - t0) / (20 * len(texts))

    per_name = min(named() for _ in range(3))
    bench.add(n, Figure("which community a message names (named_in)", per_name, INTERACTIVE_S))
    per = min(in_memory() for _ in range(3))
    bench.add(
        n,
        Figure(
            "route in memory (named_in + route_message)",
            per,
            INTERACTIVE_S,
            f"(first use of {len(set(picks))} communities: {warm:.2f} s)",
        ),
    )

    services = services_for(bench, street, now)
    chat = conversation(services)
    times: list[float] = []
    stmts: list[Statement] = []
    cpu = time.process_time()
    for k, i in enumerate(picks):
        resident = i * sizes.residents + 1 + (k * 37) % sizes.residents
        # half name the community, half rely on the community the resident is remembered in
        words = texts[k] if k % 2 == 0 else f"{1 + k % 30}号楼门口垃圾桶满了好几天没人收"
        bench.recorder.statements.clear()
        bench.recorder.on = True
        t0 = time.perf_counter()
        await chat.handle(Inbound(channel="console", sender=f"u{resident}", text=words))
        times.append(time.perf_counter() - t0)
        bench.recorder.on = False
        stmts += bench.recorder.statements
    figure = Figure(
        "a resident's report (Conversation.handle)",
        statistics.median(times),
        INTERACTIVE_S,
        "median (cpu: mean per turn)",
        worst=max(times),
    )
    figure.slowest = max(stmts, key=lambda s: s.seconds, default=None)
    figure.statements = stmts
    figure.cpu = (time.process_time() - cpu) / len(times)
    figure.queries = len(stmts) // len(times)
    bench.add(n, figure)


async def measure_scan(bench: Bench, n: int, street: Street, now: datetime) -> None:
    services = services_for(bench, street, now)
    await bench.measure(
        n, "escalation scan, cases due", SCAN_S, lambda: deadlines.scan(services), lambda w: f"({w} woken)"
    )
    await bench.measure(n, "escalation scan, nothing due", SCAN_S, lambda: deadlines.scan(services))


async def measure_reminders(bench: Bench, n: int, street: Street, day: date) -> None:
    evening = datetime(day.year, day.month, day.day, 20, tzinfo=TZ).astimezone(UTC)
    services = services_for(bench, street, evening)

    async def due() -> int:
        async with bench.sessions() as session:
            return len((await session.scalars(due_query(evening))).all())

    await bench.measure(n, "the day's due reminders (due_query)", SCAN_S, due, lambda k: f"({k} due)")
    await bench.measure(
        n,
        "one day's due reminders (send_due)",
        SCAN_S,
        lambda: send_due(services, ReminderSettings(batch_size=200)),
        lambda k: f"({k} messages)",
    )


async def say_as(bench: Bench, services: Services, who: str, words: str) -> None:
    await conversation(services).handle(Inbound(channel="console", sender=who, text=words))


async def measure_stats_and_lists(bench: Bench, n: int, street: Street, now: datetime) -> None:
    services = services_for(bench, street, now)
    middle = n // 2
    leader = staff_ids(middle, 3)[0]
    for name, who, words in (
        (f"统计 by {code(middle)}'s admin (chat)", admin_id(middle), "统计"),
        (f"任务: {code(middle)} G3 leader's open cases (chat)", leader, "任务"),
        (f"待分拣: {code(middle)}'s triage queue (chat)", admin_id(middle), "待分拣"),
    ):
        await say_as(bench, services, who, words)  # once to warm the connection and caches
        await bench.measure(n, name, INTERACTIVE_S, lambda w=who, t=words: say_as(bench, services, w, t))

    start = stats.local_midnight(now.astimezone(TZ).date().replace(day=1), TZ)
    if "community_id" in inspect.signature(stats.compute).parameters:
        async with bench.sessions() as session:
            middle_id = (await community_ids(session))[code(middle)]

        async def one() -> Any:
            async with bench.sessions() as session:
                return await stats.compute(
                    session,
                    street.communities[middle],
                    start,
                    now,
                    now,
                    period="month",
                    community_id=middle_id,
                )

        await bench.measure(n, f"{code(middle)}'s month (stats.compute)", INTERACTIVE_S, one)

    async def district() -> Any:
        async with bench.sessions() as session:
            return await stats.compute(session, street.communities[0], start, now, now, period="month")

    await bench.measure(n, "the district's month (stats.compute, all cases)", SCAN_S, district)


# -- the run ------------------------------------------------------------------------------------------------


async def stage(bench: Bench, folder: Path, n: int, done: int, number: int, sizes: Sizes) -> None:
    now = NOW0 + timedelta(minutes=10 * number)
    day = DAY0 + timedelta(days=number)
    print(f"\n== {n} communities", flush=True)
    path = write_district(folder, n)
    street = await measure_loading(bench, n, path)
    async with bench.sessions() as session:
        ids = await community_ids(session)
    new = list(range(done, n))
    limits = {"other": deadlines.DEFAULT_LIMIT_HOURS, **street.communities[0].category_limits}
    print(f"  generating {len(new)} communities' history …", flush=True)
    started = time.perf_counter()
    import asyncpg

    u = make_url(bench.engine.url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    try:
        work = Stage([ids[code(i)] for i in new], new, [code(i) for i in new], now, day)
        await generate(conn, work, sizes, limits, lambda line: print(line, flush=True))
    finally:
        await conn.close()
    print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    async with bench.sessions() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM residents), (SELECT count(*) FROM cases), "
                    "(SELECT count(*) FROM cases WHERE status IN "
                    "('new', 'assigned', 'accepted', 'in_progress')), "
                    "(SELECT count(*) FROM rem_reminders)"
                )
            )
        ).one()
    print(
        f"  the district: {counts[0]:,} residents, {counts[1]:,} cases ({counts[2]:,} open), "
        f"{counts[3]:,} reminders",
        flush=True,
    )
    await measure_routing(bench, n, street, sizes, now)
    await measure_scan(bench, n, street, now)
    await measure_reminders(bench, n, street, day)
    await measure_stats_and_lists(bench, n, street, now)
    for figure in bench.figures[n]:
        if bench.args.explain or not figure.ok:
            print(f"  -- {figure.name}")
            await bench.explain(figure)


def summary(bench: Bench) -> None:
    sizes = sorted(bench.figures)
    print("\n" + f"{'':46s}" + "".join(f"{f'N={n}':>14s}" for n in sizes) + "   target")
    names = [f.name for f in bench.figures[sizes[0]]]
    for k, name in enumerate(names):
        cells = []
        for n in sizes:
            f = bench.figures[n][k]
            cells.append(ms(f.seconds) + (" " if f.ok else "!"))
        print(
            f"{name[:46]:46s}"
            + "".join(f"{c:>14s}" for c in cells)
            + f"   < {bench.figures[sizes[0]][k].target:g} s"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--scale", type=float, default=1.0, help="each community's size (0.01: a quick run)")
    parser.add_argument("--runs", type=int, default=20, help="messages routed at each N")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN every measurement's slowest query")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    sizes = Sizes.at(args.scale)
    print(f"per community: {sizes}; PostgreSQL {make_url(PG_URL).render_as_string(hide_password=True)}")
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="district_") as folder:
        async with scratch_postgres(prefix=f"bench_district_{os.getpid()}", keep=args.keep) as url:
            engine = create_engine(url)
            try:
                await upgrade(engine)
                recorder = Recorder()
                recorder.attach(engine)
                bench = Bench(engine, session_factory(engine), recorder, args)
                done = 0
                for number, n in enumerate(sorted(args.sizes)):
                    await stage(bench, Path(folder), n, done, number, sizes)
                    done = n
                summary(bench)
            finally:
                await engine.dispose()
    print(f"\nwhole run: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
