"""The Telegram channel when things go wrong, against the real ``outreach-bot serve`` process and the
fake Bot API: the database restarting under a burst of updates (a PostgreSQL server of the test's
own, stopped and started again), Telegram unreachable at start-up, hostile webhook bodies, and
answers from the Bot API that are not what it documents."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.database import create_engine, session_factory
from storage.models import InboundMessage
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.live_server import ServerProcess, serve_process
from tests.own_postgres import OwnPostgres, own_postgres
from tests.test_telegram import COMMUNITY, SECRET_HEADER, eventually

WEBHOOK = "/telegram/webhook"


@asynccontextmanager
async def bot_server(
    folder: Path, fake: FakeTelegram, db_url: str, mode: str, *, wait_ready: bool = True
) -> AsyncIterator[ServerProcess]:
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_TELEGRAM_TOKEN=TOKEN,
        OUTREACH_TELEGRAM_API_URL=fake.api_url,
        OUTREACH_LOG_LEVEL="INFO",
    )
    if mode == "webhook":
        env["OUTREACH_TELEGRAM_WEBHOOK_URL"] = "http://127.0.0.1:1/unused"  # the fake never calls it
        env["OUTREACH_TELEGRAM_WEBHOOK_SECRET"] = uuid.uuid4().hex
    async with serve_process(folder, env) as server:
        if wait_ready:
            await eventually(lambda: ready(server), "/readyz to answer 200", deadline=60)
        yield server


async def ready(server: ServerProcess) -> bool:
    return (await server.http.get(server.url + "/readyz")).status_code == 200


async def readiness(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    response = await server.http.get(server.url + "/readyz")
    return response.status_code, response.json()


async def as_telegram_delivers(
    server: ServerProcess, secret: str, update: dict[str, Any], refused: dict[int, int]
) -> int:
    """Telegram's webhook delivery: POST the update until a 2xx, pausing between tries (``refused``
    counts the other answers per update id). Returns the number of tries."""
    tries, pause = 0, 0.1
    while True:
        tries += 1
        try:
            response = await server.http.post(
                server.url + WEBHOOK, json=update, headers={SECRET_HEADER: secret}
            )
            if 200 <= response.status_code < 300:
                return tries
        except httpx.HTTPError:
            pass
        refused[update["update_id"]] = refused.get(update["update_id"], 0) + 1
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


async def stored_updates(sessions: async_sessionmaker[AsyncSession]) -> set[int]:
    async with sessions() as session:
        ids = await session.scalars(
            select(InboundMessage.external_id).where(InboundMessage.channel == "telegram")
        )
        return {int(i) for i in ids if i is not None}


# -- the database restarts under a burst --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["webhook", "polling"])
async def test_no_update_is_lost_while_the_database_restarts(tmp_path: Path, mode: str) -> None:
    fake = FakeTelegram().start()
    try:
        with own_postgres() as pg:
            async with bot_server(tmp_path, fake, pg.url, mode) as server:
                await burst_across_a_restart(server, fake, pg, mode)
    finally:
        fake.stop()


async def burst_across_a_restart(
    server: ServerProcess, fake: FakeTelegram, pg: OwnPostgres, mode: str
) -> None:
    engine = create_engine(pg.url, pool_pre_ping=True)
    sessions = session_factory(engine)
    users = iter(range(900001, 999999))
    sent: list[int] = []
    deliveries: list[asyncio.Task[int]] = []
    refused: dict[int, int] = {}

    async def send(count: int) -> list[dict[str, Any]]:
        updates = [fake.message(next(users), "/start") for _ in range(count)]
        sent.extend(u["update_id"] for u in updates)
        for update in updates:
            if mode == "webhook":
                secret = fake.webhook["secret_token"]
                deliveries.append(asyncio.create_task(as_telegram_delivers(server, secret, update, refused)))
            else:
                fake.push(update)
        return updates

    def fetched(updates: list[dict[str, Any]]) -> bool:
        wanted = {u["update_id"] for u in updates}
        handed = {u["update_id"] for c in fake.all_calls("getUpdates") for u in (c.result or [])}
        return wanted <= handed

    try:
        await send(20)
        await eventually(lambda: _all_stored(sessions, sent), "the first updates to be stored")
        await engine.dispose()

        pg.stop()
        status, body = await eventually(_not_ready(server), "/readyz to report the database down")
        assert status == 503 and body["database"].startswith("unreachable")
        during = await send(25)
        if mode == "webhook":
            # Each is refused (not one answered 200 while nothing could be stored): Telegram keeps it.
            await eventually(lambda: all(refused.get(u["update_id"]) for u in during), "refusals")
            assert not any(t.done() for t in deliveries[20:])
        else:
            await eventually(lambda: fetched(during), "the bot to fetch the updates sent during the outage")

        pg.start()
        await eventually(lambda: ready(server), "/readyz to recover", deadline=60)
        await send(20)
        if deliveries:
            tries = await asyncio.wait_for(asyncio.gather(*deliveries), 90)
            assert all(t > 1 for t in tries[20:45])
        assert await eventually(lambda: _all_stored(sessions, sent), "every update to be stored", deadline=90)
        assert await stored_updates(sessions) == set(sent)
    finally:
        for task in deliveries:
            task.cancel()
        await engine.dispose()


async def _all_stored(sessions: async_sessionmaker[AsyncSession], sent: list[int]) -> bool:
    try:
        return await stored_updates(sessions) >= set(sent)
    except Exception:
        return False


def _not_ready(server: ServerProcess) -> Any:
    async def check() -> tuple[int, dict[str, Any]] | None:
        status, body = await readiness(server)
        return (status, body) if status == 503 and body.get("database", "ok") != "ok" else None

    return check
