"""The Telegram channel when things go wrong, against the real ``outreach-bot serve`` process and the
fake Bot API: the database restarting under a burst of updates (a PostgreSQL server of the test's
own, stopped and started again), Telegram unreachable at start-up, hostile webhook bodies, and
answers from the Bot API that are not what it documents."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bench.support import wechat_payloads
from bench.support.fake_telegram import FakeTelegram
from bench.support.live_server import ServerProcess, serve_process
from bench.support.waiting import wait_until
from bot.channels.telegram.limiter import RateLimiter
from bot.channels.telegram.sender import TelegramSender
from handlers.kernel.outbox import Outbound, drain, enqueue
from storage.database import create_engine, session_factory
from storage.models import InboundMessage, OutboxMessage, OutboxStatus
from tests.channels.test_telegram import COMMUNITY, SECRET_HEADER
from tests.support.chat import Clock
from tests.support.own_postgres import OwnPostgres, own_postgres

WEBHOOK = "/telegram/webhook"


@asynccontextmanager
async def bot_server(
    folder: Path,
    fake: FakeTelegram,
    db_url: str,
    mode: str,
    *,
    wait_ready: bool = True,
    extra: dict[str, str] | None = None,
) -> AsyncIterator[ServerProcess]:
    """The server for ``fake`` (its token) in ``mode``; awaited until /readyz says 200 unless
    ``wait_ready`` is False (then only /healthz)."""
    config = folder / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_TELEGRAM_TOKEN=fake.token,
        OUTREACH_TELEGRAM_API_URL=fake.api_url,
        OUTREACH_LOG_LEVEL="INFO",
    )
    if mode == "webhook":
        env["OUTREACH_TELEGRAM_WEBHOOK_URL"] = "http://127.0.0.1:1/unused"  # the fake never calls it
        env["OUTREACH_TELEGRAM_WEBHOOK_SECRET"] = uuid.uuid4().hex
    env.update(extra or {})
    async with serve_process(folder, env) as server:
        if wait_ready:
            await wait_until(lambda: ready(server), "/readyz to answer 200", timeout=60)
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
        await wait_until(lambda: _all_stored(sessions, sent), "the first updates to be stored")
        await engine.dispose()

        pg.stop()
        status, body = await wait_until(_not_ready(server), "/readyz to report the database down")
        assert status == 503 and body["database"].startswith("unreachable")
        during = await send(25)
        if mode == "webhook":
            # Each is refused (not one answered 200 while nothing could be stored): Telegram keeps it.
            await wait_until(lambda: all(refused.get(u["update_id"]) for u in during), "refusals")
            assert not any(t.done() for t in deliveries[20:])
        else:
            await wait_until(lambda: fetched(during), "the bot to fetch the updates sent during the outage")

        pg.start()
        await wait_until(lambda: ready(server), "/readyz to recover", timeout=60)
        await send(20)
        if deliveries:
            tries = await asyncio.wait_for(asyncio.gather(*deliveries), 90)
            assert all(t > 1 for t in tries[20:45])
        assert await wait_until(lambda: _all_stored(sessions, sent), "every update to be stored", timeout=90)
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


# -- Telegram unreachable at start-up ----------------------------------------------------------------

# Shaped like a real token, so that it is one the masking must recognise.
REAL_LOOKING_TOKEN = "7012345678:AAH" + "kX9_q2Lr-8Zb" * 3
WECHAT = {
    "OUTREACH_WECHAT_TOKEN": wechat_payloads.TOKEN,
    "OUTREACH_WECHAT_APP_ID": wechat_payloads.APP_ID,
    "OUTREACH_WECHAT_APP_SECRET": wechat_payloads.APP_SECRET,
    "OUTREACH_WECHAT_API_URL": "http://127.0.0.1:9",  # never reached in this test
}


async def test_the_server_starts_while_telegram_is_down_and_connects_when_it_is_back(tmp_path: Path) -> None:
    fake = FakeTelegram(token=REAL_LOOKING_TOKEN).start()
    fake.go_down(502, b"<html>502 Bad Gateway while proxying {path}</html>")
    try:
        async with bot_server(
            tmp_path,
            fake,
            f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
            "webhook",
            wait_ready=False,
            extra=WECHAT,
        ) as server:
            status, body = await wait_until(_telegram_retrying(server), "/readyz to report Telegram")
            assert status == 503 and body["database"] == "ok"
            assert body["telegram"].startswith("starting: retrying in ")
            refused = await server.http.post(
                server.url + WEBHOOK, json=fake.message(1, "hi"), headers={SECRET_HEADER: "x"}
            )
            assert refused.status_code == 403  # the secret is checked before anything else
            assert server.process.poll() is None and fake.all_calls("getMe")  # tried, failed, alive
            assert body["wechat"] == "ok"  # the other channel serves meanwhile
            signed = wechat_payloads.sign("")
            echo = await server.http.get(
                server.url + "/wechat", params={**signed.params, "echostr": "8172635"}
            )
            assert (echo.status_code, echo.text) == (200, "8172635")

            fake.come_back()
            await wait_until(lambda: ready(server), "/readyz once Telegram is back", timeout=60)
            assert fake.webhook.get("secret_token")
            update = fake.message(424242, "/start")
            response = await server.http.post(
                server.url + WEBHOOK, json=update, headers={SECRET_HEADER: fake.webhook["secret_token"]}
            )
            assert response.status_code == 200
            await wait_until(lambda: fake.sent(424242), "the bot's answer")
        log = server.log.read_text(errors="replace")
        assert "could not start" in log
        assert REAL_LOOKING_TOKEN not in log and REAL_LOOKING_TOKEN.split(":")[1] not in log
        assert "Traceback" not in log
    finally:
        fake.stop()


async def test_polling_survives_telegram_going_away_and_reports_it(tmp_path: Path) -> None:
    fake = FakeTelegram().start()
    try:
        async with bot_server(
            tmp_path, fake, f"sqlite+aiosqlite:///{tmp_path / 't.db'}", "polling"
        ) as server:
            fake.go_down(502)

            async def degraded() -> dict[str, Any] | None:
                status, body = await readiness(server)
                return body if status == 503 and body["telegram"].startswith("degraded: getUpdates") else None

            await wait_until(degraded, "/readyz to report getUpdates failing")
            update = fake.message(515151, "/start")
            fake.push(update)
            fake.come_back()
            await wait_until(lambda: fake.sent(515151), "the answer once Telegram is back")
            await wait_until(lambda: ready(server), "/readyz to recover")
        assert "Traceback" not in server.log.read_text(errors="replace")
    finally:
        fake.stop()


def _telegram_retrying(server: ServerProcess) -> Any:
    async def check() -> tuple[int, dict[str, Any]] | None:
        status, body = await readiness(server)
        return (status, body) if str(body.get("telegram", "")).startswith("starting: retrying") else None

    return check


# -- hostile webhook bodies --------------------------------------------------------------------------


async def test_the_webhook_refuses_huge_and_deeply_nested_bodies_cheaply(tmp_path: Path) -> None:
    fake = FakeTelegram().start()
    db_url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    try:
        async with bot_server(tmp_path, fake, db_url, "webhook") as server:
            headers = {SECRET_HEADER: fake.webhook["secret_token"], "content-type": "application/json"}
            url = server.url + WEBHOOK

            deep = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            assert (await server.http.post(url, content=deep, headers=headers)).status_code == 400
            nested: dict[str, Any] = {}
            for _ in range(40):  # parses, but deeper than any update
                nested = {"reply_to_message": nested}
            update = {"update_id": fake.next_update_id(), "message": nested}
            assert (await server.http.post(url, json=update, headers=headers)).status_code == 400

            big = fake.message(31337, "小广告" * 400_000)  # 3.6 MB of valid JSON
            body = json.dumps(big, ensure_ascii=False).encode()
            assert (await server.http.post(url, content=body, headers=headers)).status_code == 413

            async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: refused while reading
                for start in range(0, len(body), 64 * 1024):
                    yield body[start : start + 64 * 1024]

            response = await server.http.post(url, content=streamed(), headers=headers)
            assert response.status_code == 413

            same_length = "x" * len(fake.webhook["secret_token"])
            wrong = await server.http.post(
                url, json=fake.message(5, "hi"), headers={SECRET_HEADER: same_length}
            )
            assert wrong.status_code == 403

            fine = fake.message(31338, "/start")
            assert (await server.http.post(url, json=fine, headers=headers)).status_code == 200
            await wait_until(lambda: fake.sent(31338), "the server to go on answering")
            engine = create_engine(db_url)
            try:
                assert await stored_updates(session_factory(engine)) == {fine["update_id"]}
            finally:
                await engine.dispose()
    finally:
        fake.stop()


# -- Bot API answers that are not what it documents --------------------------------------------------


@pytest.fixture(scope="module")
def api() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


_chats = iter(range(810001, 899999))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, b"{}"),
        (429, b'{"ok": false, "error_code": 429, "description": "Too Many Requests"}'),
        (500, b"Internal Server Error"),
        (502, b""),
        (200, b"{}"),
        (200, b"<html>captive portal</html>"),
    ],
)
async def test_an_unexpected_answer_is_retried_never_taken_as_sent(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, api: FakeTelegram, status: int, body: bytes
) -> None:
    chat = next(_chats)
    api.answer_raw(chat, status, body)
    async with sessions.begin() as session:
        enqueue(session, Outbound("telegram", str(chat), "案件 #7 已受理", kind="ack"), clock())
    async with Bot(api.token, base_url=api.api_url) as bot:
        sender = TelegramSender(bot, sessions, RateLimiter(clock=lambda: clock().timestamp()), clock=clock)
        assert await drain(sessions, sender, clock) == 0
        async with sessions() as session:
            row = (await session.scalars(select(OutboxMessage))).one()
        assert row.status == OutboxStatus.PENDING and row.last_error and row.not_before > clock()
        clock.now = row.not_before
        assert await drain(sessions, sender, clock) == 1
    assert [c.status for c in api.attempts(chat)] == [status, 200]
    assert [c.text for c in api.sent(chat) if c.status == 200][-1] == "案件 #7 已受理"
