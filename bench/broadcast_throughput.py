"""Broadcast throughput: a 100,000-resident broadcast through the outbox to the fake Telegram Bot API.

    python bench/broadcast_throughput.py [--residents 100000] [--limited 3000] [--db sqlite|postgres]
                                         [--channel telegram|wechat]

The fake API (bench/support/fake_telegram.py or fake_wechat.py) runs in a child process, so CPU and
memory figures are ours. Our side is the production code path: the broadcast is expanded into outbox
rows (``handlers.broadcasts.expansion.expand``) and drained by the core outbox
(``handlers.kernel.outbox.drain``, claim 50, send, settle each) through the channel's real sender
(``TelegramSender`` with its rate limiter, or ``WeChatSender``), exactly as ``outreach-bot serve`` does,
in one process.

(a) limits lifted: every resident, the limiter opened up (Telegram) — how fast our side can go
    (messages/s over the whole drain), expansion speed, our peak RSS, and what one claim of 50 rows
    costs with the whole broadcast waiting in the outbox (median of 10).
(b) real limits on (Telegram only: 30 messages/s overall, 1/s per chat): a broadcast to ``--limited``
    residents (a tag), the achieved rate as a share of 30/s, measured on the fake's clock from the first
    to the last message received, and the busiest one-second window.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


# -- the fake API, in a child process -----------------------------------------------------------------


def _fake_main(kind: str, conn: Any) -> None:
    if kind == "telegram":
        from bench.support.fake_telegram import SEND_METHODS, FakeTelegram

        fake: Any = FakeTelegram()
        stamps: list[float] = []
        original = fake._refusal

        def refusal(call: Any) -> Any:
            if call.method in SEND_METHODS:
                stamps.append(time.monotonic())
            return original(call)

        fake._refusal = refusal
        fake.start()
        conn.send(fake.api_url)
    else:
        from bench.support import fake_wechat as fw
        from bench.support import wechat_payloads as wx

        fake = fw.FakeWeChat(wx.APP_ID, wx.APP_SECRET)
        stamps = []
        original_handle = fake.handle

        def handle(path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
            if path == fw.CUSTOM:
                stamps.append(time.monotonic())
            return original_handle(path, query, body)

        fake.handle = handle  # type: ignore[method-assign]
        fake.start()
        conn.send(fake.url)
    while True:
        command = conn.recv()
        if command == "stamps":
            conn.send(list(stamps))
        elif command == "reset":
            stamps.clear()
            if kind == "telegram":
                with fake._lock:
                    fake.calls.clear()
            else:
                fake.reset()
            conn.send(True)
        else:
            fake.stop()
            conn.send(True)
            return


class Fake:
    def __init__(self, kind: str) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_fake_main, args=(kind, child), daemon=True)
        self.process.start()
        self.url: str = self.conn.recv()

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def close(self) -> None:
        self.ask("stop")
        self.process.join(10)


# -- our side -----------------------------------------------------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def database(kind: str) -> tuple[str, Any]:
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-broadcast-")
        return f"sqlite+aiosqlite:///{folder}/bench.db", None
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(PG_URL)
    name = f"bench_broadcast_{uuid.uuid4().hex[:8]}"
    connect = {"host": u.host, "port": u.port, "user": u.username, "password": u.password}
    admin = await asyncpg.connect(database=u.database, **connect)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(database=u.database, **connect)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return u.set(database=name).render_as_string(hide_password=False), drop


async def seed(sessions: Any, n: int, tagged: int, channel: str) -> None:
    from sqlalchemy import insert

    from handlers.broadcasts.models import ResidentTag
    from storage.models import Resident, ResidentIdentity, utcnow

    now = utcnow()
    recent = now - timedelta(hours=1)
    step = 5000
    for start in range(0, n, step):
        ids = range(start + 1, min(n, start + step) + 1)
        async with sessions.begin() as session:
            await session.execute(
                insert(Resident),
                [{"id": i, "display_name": None, "created_at": now, "blocked": False} for i in ids],
            )
            await session.execute(
                insert(ResidentIdentity),
                [
                    {
                        "channel": channel,
                        "external_id": str(10_000_000 + i) if channel == "telegram" else f"oBENCH{i:07d}",
                        "resident_id": i,
                        "created_at": now,
                        "last_inbound_at": recent,
                    }
                    for i in ids
                ],
            )
            tags = [{"resident_id": i, "tag": "bench", "created_at": now} for i in ids if i <= tagged]
            if tags:
                await session.execute(insert(ResidentTag), tags)


async def make_sender(channel: str, url: str, sessions: Any, lifted: bool) -> tuple[Any, Any]:
    if channel == "telegram":
        from telegram import Bot

        from bench.support.fake_telegram import TOKEN
        from bot.channels.telegram.limiter import RateLimiter
        from bot.channels.telegram.sender import TelegramSender

        bot = Bot(TOKEN, base_url=url)
        await bot.initialize()
        limiter = RateLimiter(per_second=10**9, chat_interval=0.0) if lifted else RateLimiter()
        return TelegramSender(bot, sessions, limiter), bot.shutdown
    import httpx

    from bench.support import wechat_payloads as wx
    from bot.channels.wechat.client import DatabaseTokenStore, WeChatClient
    from bot.channels.wechat.sender import WeChatSender

    http = httpx.AsyncClient(timeout=10)
    client = WeChatClient(wx.APP_ID, wx.APP_SECRET, url, DatabaseTokenStore(sessions), http=http)
    return WeChatSender(client, sessions), http.aclose


async def broadcast_once(
    services: Any, sender: Any, audience: Any, label: str
) -> tuple[int, float, float, float, float]:
    """Create, expand and drain one broadcast; returns (messages, expand seconds, drain seconds, msg/s,
    claim milliseconds)."""
    from handlers.broadcasts import expansion, service
    from handlers.broadcasts.models import BroadcastStatus
    from handlers.kernel.outbox import drain

    async with services.sessions.begin() as session:
        b = await service.create(
            session,
            text=f"基准测试通知 {label}",
            audience=audience,
            created_by="bench",
            source="cli",
            now=services.clock(),
            status=BroadcastStatus.SCHEDULED,
        )
        broadcast_id = b.id
    t0 = time.perf_counter()
    await expansion.expand(
        services.sessions,
        broadcast_id,
        channels=services.channels,
        community=services.community.name,
        clock=services.clock,
    )
    t1 = time.perf_counter()
    claim_ms = await claim_cost(services, sender.channel)
    sent = 0
    while True:
        n = await drain(services.sessions, sender, services.clock)
        if not n:
            async with services.sessions() as session:
                pending = (await service.progress(session, broadcast_id, services.clock())).pending
            if not pending:
                break
            await asyncio.sleep(0.05)
        sent += n
    t2 = time.perf_counter()
    return sent, t1 - t0, t2 - t1, sent / (t2 - t1), claim_ms


async def claim_cost(services: Any, channel: str) -> float:
    """Median milliseconds of one outbox claim (50 rows) with the broadcast's rows pending; each claim
    is handed back before the next."""
    from sqlalchemy import update

    from handlers.kernel.outbox import claim
    from storage.models import OutboxMessage, OutboxStatus

    times = []
    for _ in range(10):
        t = time.perf_counter()
        rows = await claim(services.sessions, channel, services.clock())
        times.append((time.perf_counter() - t) * 1000)
        async with services.sessions.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([r.id for r in rows]))
                .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None)
            )
    return sorted(times)[len(times) // 2]


async def main(args: argparse.Namespace) -> None:
    from handlers.broadcasts.audience import Audience
    from handlers.community.model import load_community
    from handlers.community.store import sync_community
    from handlers.kernel.context import Services
    from storage.database import create_engine, session_factory
    from storage.migrate import upgrade

    fake = Fake(args.channel)
    url, drop = await database(args.db)
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        community = load_community(None)
        async with sessions.begin() as session:
            await sync_community(session, community)
        t = time.perf_counter()
        await seed(sessions, args.residents, args.limited, args.channel)
        print(f"seeded {args.residents:,} residents in {time.perf_counter() - t:.1f} s ({args.db})")
        services = Services(sessions=sessions, community=community, channels=frozenset({args.channel}))
        rss_before = rss_mb()

        sender, close = await make_sender(args.channel, fake.url, sessions, lifted=True)
        try:
            sent, expand_s, drain_s, rate, claim_ms = await broadcast_once(services, sender, Audience(), "a")
        finally:
            await close()
        print(
            f"(a) limits lifted, {args.channel}: {sent:,} messages; expansion {expand_s:.1f} s "
            f"({args.residents / expand_s:,.0f} rows/s); delivery {drain_s:.1f} s = {rate:,.0f} messages/s; "
            f"peak RSS {rss_mb():.0f} MB (after seeding {rss_before:.0f} MB); one claim of 50 with "
            f"{args.residents:,} pending: {claim_ms:.1f} ms"
        )
        if args.channel == "telegram" and args.limited:
            fake.ask("reset")
            sender, close = await make_sender(args.channel, fake.url, sessions, lifted=False)
            try:
                sent, _, drain_s, rate, _ = await broadcast_once(
                    services, sender, Audience.of(tags=["bench"]), "b"
                )
            finally:
                await close()
            stamps = sorted(fake.ask("stamps"))
            span = stamps[-1] - stamps[0]
            # Whole seconds from the first message: a limit of 30 in any second allows 30 * T in T s.
            whole = max(int(span), 1)
            observed = sum(1 for t in stamps if t < stamps[0] + whole) / whole
            busiest, j = 0, 0
            for i, s in enumerate(stamps):
                while stamps[j] <= s - 1.0:
                    j += 1
                busiest = max(busiest, i - j + 1)
            print(
                f"(b) real limits, telegram: {sent:,} messages in {span:.1f} s on the fake's clock; "
                f"{observed:.2f} messages/s over the first {whole} whole seconds = "
                f"{100 * observed / 30:.1f} % of 30/s; busiest 1-s window at the fake {busiest} "
                f"(arrival jitter; our limiter allows 30)"
            )
    finally:
        await engine.dispose()
        if drop is not None:
            await drop()
        fake.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--limited", type=int, default=3000, help="messages for (b); 0 skips it")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--channel", choices=("telegram", "wechat"), default="telegram")
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
