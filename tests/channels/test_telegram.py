"""The Telegram channel, end to end: the real ``outreach-bot serve`` process against a fake Bot API.

Each server runs as a subprocess (polling or webhook mode, SQLite or PostgreSQL) talking to its own
``FakeTelegram`` on 127.0.0.1. Tests act as Telegram users (updates pushed to getUpdates or POSTed to
the webhook with the secret the bot registered) and read what the bot sent from the fake's call log
and the database. Every wait is a condition polled until a generous deadline; nothing asserts timing.
The rate limiter and the keyboards are unit-tested here too, the limiter with an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update

from bench.support.fake_telegram import TOKEN, Call, FakeTelegram
from bench.support.live_server import command, free_port
from bench.support.scratch_db import scratch_postgres
from bench.support.waiting import wait_until
from bot.channels.telegram import keyboards
from bot.channels.telegram.handlers import inbound_from
from bot.channels.telegram.limiter import RateLimiter
from handlers.cases.models import Case
from messages import render
from storage.database import create_engine, session_factory
from storage.models import InboundMessage, OutboxMessage, ResidentIdentity
from tests.support.db import require_postgres

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

ZHANG, LI, ZHAO, WU, CHEN = 100001, 100002, 100003, 100004, 100009  # workers G1, G2, G3; leader; admin

COMMUNITY = """
community:
  name: 幸福社区
  timezone: Asia/Shanghai
grids:
  - code: G1
    name: 第一网格
    buildings: ["1-6", "A座", "B座"]
    places: [东门, 幸福路, 农贸市场]
    leader: li
    workers:
      - {staff: zhang, categories: [poster, garbage]}
      - {staff: wang, categories: [mosquito, pests, sewage]}
  - code: G2
    name: 第二网格
    buildings: ["7-12"]
    places: [南门, 健身广场]
    leader: li
    workers:
      - {staff: zhao, categories: [poster, garbage, mosquito, pests, sewage]}
  - code: G3
    name: 第三网格
    buildings: ["13-14"]
    workers:
      - {staff: wu, categories: [poster]}
staff:
  - {id: zhang, name: 张伟, role: worker, telegram: 100001}
  - {id: wang, name: 王芳, role: worker}
  - {id: zhao, name: 赵磊, role: worker, telegram: 100003}
  - {id: wu, name: 吴强, role: worker, telegram: 100004}
  - {id: li, name: 李娜, role: leader, telegram: 100002}
  - {id: chen, name: 陈静, role: admin, telegram: 100009}
categories: []
"""


def case_number(text: str) -> int:
    match = re.search(r"#(\d+)", text)
    assert match, text
    return int(match.group(1))


@dataclass
class BotServer:
    """One ``outreach-bot serve`` process, its fake Bot API and its database."""

    mode: str  # "polling" or "webhook"
    backend: str  # "sqlite" or "postgres"
    fake: FakeTelegram
    process: subprocess.Popen[bytes]
    port: int
    db_url: str
    log: Path
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))
    engine: AsyncEngine | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self.engine is None:
            self.engine = create_engine(self.db_url)
        return session_factory(self.engine)

    async def deliver(self, update: dict[str, Any], *, redeliver: bool = False) -> None:
        """Hand an update to the bot as Telegram would in this mode."""
        if self.mode == "polling":
            self.fake.push(update, redeliver=redeliver)
            return
        secret = self.fake.webhook["secret_token"]
        response = await self.http.post(self.webhook_url, json=update, headers={SECRET_HEADER: secret})
        assert response.status_code == 200, response.status_code

    async def say(self, user: int, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        update = self.fake.message(user, text, **kwargs)
        await self.deliver(update)
        return update

    async def press(self, user: int, data: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
        update = self.fake.button(user, data, message)
        await self.deliver(update)
        return update

    async def received(self, chat: int, pattern: str, after: int = 0) -> Call:
        """The first message to ``chat`` (from index ``after`` on) whose text matches ``pattern``."""

        def find() -> Call | None:
            return next((c for c in self.fake.sent(chat)[after:] if re.search(pattern, c.text)), None)

        return await wait_until(find, f"a message to {chat} matching {pattern!r}")

    async def confirmed(self, update: dict[str, Any]) -> None:
        """Polling: wait until getUpdates has moved past the update (it is confirmed to Telegram, and
        so is everything before it). A webhook's 200 is checked by ``deliver`` itself."""
        if self.mode != "polling":
            return
        last = int(update["update_id"])

        def passed() -> bool:
            return any(int(c.params.get("offset") or 0) > last for c in self.fake.all_calls("getUpdates"))

        await wait_until(passed, f"getUpdates to confirm update {last}")

    async def answered(self, update: dict[str, Any]) -> Call:
        query_id = update["callback_query"]["id"]

        def find() -> Call | None:
            calls = self.fake.all_calls("answerCallbackQuery")
            return next((c for c in calls if c.params.get("callback_query_id") == query_id), None)

        return await wait_until(find, f"answerCallbackQuery for {query_id}")

    def cleared(self, message: Call) -> bool:
        """Whether the bot took the buttons off a message it sent."""
        return any(
            int(c.params["message_id"]) == message.result["message_id"] and not c.params.get("reply_markup")
            for c in self.fake.all_calls("editMessageReplyMarkup")
        )

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions()() as session:
            return await session.scalar(statement)

    async def stop(self) -> None:
        await self.http.aclose()
        if self.engine is not None:
            await self.engine.dispose()
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.fake.stop()


async def _database(backend: str, tmp: Path) -> tuple[str, Callable[[], Awaitable[None]]]:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'telegram.db'}", _nothing
    await require_postgres()
    database = scratch_postgres("outreach_tg")
    url = await database.__aenter__()

    async def drop() -> None:
        await database.__aexit__(None, None, None)

    return url, drop


async def _nothing() -> None:
    return None


async def start_server(
    mode: str, backend: str, tmp: Path, log_level: str = "INFO"
) -> tuple[BotServer, Callable[[], Awaitable[None]]]:
    db_url, drop = await _database(backend, tmp)
    config = tmp / "community.yaml"
    config.write_text(COMMUNITY, encoding="utf-8")
    fake = FakeTelegram().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        OUTREACH_DATABASE_URL=db_url,
        OUTREACH_CONFIG=str(config),
        OUTREACH_TELEGRAM_TOKEN=TOKEN,
        OUTREACH_TELEGRAM_API_URL=fake.api_url,
        OUTREACH_LOG_LEVEL=log_level,
    )
    if mode == "webhook":
        env["OUTREACH_TELEGRAM_WEBHOOK_URL"] = f"http://127.0.0.1:{port}/telegram/webhook"
        env["OUTREACH_TELEGRAM_WEBHOOK_SECRET"] = uuid.uuid4().hex
    log = tmp / "server.log"
    process = subprocess.Popen(
        [*command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,  # no stray .env file
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    server = BotServer(mode, backend, fake, process, port, db_url, log)

    async def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return (await server.http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        return False

    try:
        await wait_until(healthy, "the server's /healthz", timeout=90)
    except BaseException:
        await server.stop()
        await drop()
        raise
    return server, drop


class Servers:
    """The module's servers, all started at once in the background and shared by its tests (each
    test uses its own users). A test waits only for the one it needs."""

    NAMES = ("polling-sqlite", "webhook-sqlite", "polling-postgres", "webhook-postgres")

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self.tmp = tmp
        self.starting: dict[str, asyncio.Task[tuple[BotServer, Callable[[], Awaitable[None]]]]] = {}

    def start_all(self) -> None:
        for name in self.NAMES:
            mode, backend = name.split("-")
            self.starting[name] = asyncio.create_task(start_server(mode, backend, self.tmp.mktemp(name)))

    async def get(self, name: str) -> BotServer:
        server, _drop = await self.starting[name]
        return server

    async def close(self) -> None:
        started = []
        for task in self.starting.values():
            with contextlib.suppress(BaseException):  # a server that could not start, or was skipped
                started.append(await task)
        for server, _drop in started:
            server.process.terminate()
        for server, drop in started:
            await server.stop()
            await drop()


@pytest.fixture(scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    registry = Servers(tmp_path_factory)
    registry.start_all()
    yield registry
    await registry.close()


ALL_MODES = [
    "polling-sqlite",
    "webhook-sqlite",
    pytest.param("polling-postgres", marks=pytest.mark.postgres),
    pytest.param("webhook-postgres", marks=pytest.mark.postgres),
]
_users = iter(range(500001, 600000))


def new_user() -> int:
    return next(_users)


# -- end to end --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_MODES)
async def test_resident_reports_worker_acts_resident_is_told(servers: Servers, name: str) -> None:
    bot = await servers.get(name)
    resident = new_user()

    await bot.say(resident, "/start")
    await bot.received(resident, "社区通")

    await bot.say(resident, "3号楼楼道里贴满了小广告")
    ack = await bot.received(resident, "案件编号")
    number = case_number(ack.text)
    card = await bot.received(ZHANG, rf"【新案件】#{number}\b")
    data = {b["text"]: b["callback_data"] for b in card.buttons}
    assert data[render("button.accept")] == f"v1|accept:{number}"
    assert data[render("button.resolve")] == f"v1|resolve:{number}"
    assert {render("button.transfer"), render("button.duplicate")} <= set(data)

    # 接单: the spinner stops with the core's answer, the resident is told, the button goes.
    press = await bot.press(ZHANG, data[render("button.accept")], card.result)
    assert "已接单" in (await bot.answered(press)).params["text"]
    await bot.received(resident, rf"#{number} 已由网格员张伟接单")

    def keyboard_edits() -> list[Call]:
        return [
            c
            for c in bot.fake.all_calls("editMessageReplyMarkup")
            if int(c.params["message_id"]) == card.result["message_id"]
        ]

    edited = await wait_until(keyboard_edits, "the accepted card's keyboard to change")
    assert f"v1|accept:{number}" not in str(edited[-1].params.get("reply_markup"))

    # 已处理 asks for a note; the note resolves the case and clears the card's buttons.
    press = await bot.press(ZHANG, data[render("button.resolve")], card.result)
    await bot.answered(press)
    await bot.received(ZHANG, rf"请回复 #{number} 的处理说明")
    await bot.say(ZHANG, "已清理干净")
    resolved = await bot.received(resident, rf"#{number} 已处理完毕")
    assert "已清理干净" in resolved.text
    await wait_until(lambda: bot.cleared(card), "the card's buttons to go")
    assert await bot.scalar(select(Case.status).where(Case.id == number)) == "resolved"

    # Satisfied / unsatisfied come as buttons; 满意 closes the case and takes the buttons away.
    rating = {b["text"]: b["callback_data"] for b in resolved.buttons}
    press = await bot.press(resident, rating[render("button.good")], resolved.result)
    assert f"#{number}" in (await bot.answered(press)).params["text"]
    await bot.received(ZHANG, re.escape(render("staff.rated_good", number=number)))
    assert await bot.scalar(select(Case.status).where(Case.id == number)) == "confirmed"
    await wait_until(lambda: bot.cleared(resolved), "the rating buttons to go")

    before = len(bot.fake.sent(resident))
    await bot.say(resident, "/my")
    await bot.received(resident, rf"#{number} ", after=before)
    before = len(bot.fake.sent(ZHANG))
    await bot.say(ZHANG, "/cases")
    await bot.received(ZHANG, "待办案件|没有待办", after=before)

    # A photo with a caption: the worker gets the largest size with the buttons.
    other = new_user()
    await bot.say(other, photo=["small-id", "large-id"], caption="5号楼门口垃圾没人清")
    number = case_number((await bot.received(other, "案件编号")).text)
    photo_card = await bot.received(ZHANG, rf"【新案件】#{number}\b")
    assert photo_card.method == "sendPhoto" and photo_card.params["photo"] == "large-id"
    assert photo_card.buttons
    assert await bot.scalar(select(Case.photo).where(Case.id == number)) == "large-id"


@pytest.mark.parametrize("name", ["polling-sqlite", "webhook-sqlite"])
async def test_a_redelivered_update_is_processed_once(servers: Servers, name: str) -> None:
    bot = await servers.get(name)
    resident = new_user()
    update = await bot.say(resident, "6号楼门口垃圾桶满了")
    await bot.received(resident, "案件编号")
    await bot.deliver(update, redeliver=True)
    before = len(bot.fake.sent(resident))
    await bot.say(resident, "/my")  # handled after the redelivery: one chat's updates go in order
    await bot.received(resident, "最近10条", after=before)
    reports = select(func.count()).select_from(Case).where(Case.reporter_external == str(resident))
    assert await bot.scalar(reports) == 1
    inbound = select(func.count()).where(InboundMessage.external_id == str(update["update_id"]))
    assert await bot.scalar(inbound) == 1
    assert sum("案件编号" in c.text for c in bot.fake.sent(resident)) == 1


async def test_the_webhook_refuses_requests_without_the_secret(servers: Servers) -> None:
    bot = await servers.get("webhook-sqlite")
    assert bot.fake.webhook["url"] == bot.webhook_url
    assert bot.fake.webhook["secret_token"]
    resident = new_user()
    for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}):
        update = bot.fake.message(resident, "3号楼有小广告")
        response = await bot.http.post(bot.webhook_url, json=update, headers=headers)
        assert response.status_code == 403
    stored = select(func.count()).select_from(InboundMessage).where(InboundMessage.sender == str(resident))
    assert await bot.scalar(stored) == 0
    assert not bot.fake.attempts(resident)


async def test_retry_after_is_honoured_not_dropped(servers: Servers) -> None:
    bot = await servers.get("webhook-sqlite")
    resident = new_user()
    bot.fake.rate_limit(resident, retry_after=1)
    await bot.say(resident, "2号楼楼道里有小广告")
    ack = await bot.received(resident, "案件编号")
    attempts = [c for c in bot.fake.attempts(resident) if c.text == ack.text]
    assert [c.status for c in attempts] == [429, 200]
    # The row is settled just after Telegram answered: wait for that commit, not only for the answer.
    sent = select(OutboxMessage).where(
        OutboxMessage.recipient == str(resident), OutboxMessage.status == "sent"
    )
    row = await wait_until(lambda: bot.scalar(sent), "the acknowledgement to be marked sent")
    assert row.attempts == 2


async def test_a_user_who_blocked_the_bot_is_marked_and_skipped(servers: Servers) -> None:
    bot = await servers.get("webhook-sqlite")
    resident = new_user()
    bot.fake.block(resident)
    await bot.say(resident, "4号楼楼道里贴满了小广告")
    card = await bot.received(ZHANG, r"4号楼楼道里贴满了小广告")
    number = case_number(card.text)
    identity = select(ResidentIdentity.unreachable_since).where(
        ResidentIdentity.channel == "telegram", ResidentIdentity.external_id == str(resident)
    )
    await wait_until(lambda: bot.scalar(identity), "the resident to be marked unreachable")
    assert [c.status for c in bot.fake.attempts(resident)] == [403]

    # The worker accepts: the resident's status message is given up without a request.
    press = await bot.press(ZHANG, f"v1|accept:{number}", card.result)
    await bot.answered(press)
    told = select(OutboxMessage.status).where(
        OutboxMessage.recipient == str(resident), OutboxMessage.kind == "status"
    )

    async def settled() -> bool:  # the row is written pending first: wait for it to be given up
        return await bot.scalar(told) == "failed"

    await wait_until(settled, "the status message to be given up")
    assert len(bot.fake.attempts(resident)) == 1


async def test_old_buttons_and_unauthorised_presses_are_refused_politely(servers: Servers) -> None:
    bot = await servers.get("polling-sqlite")
    resident = new_user()
    await bot.say(resident, "1号楼门口有小广告")
    number = case_number((await bot.received(resident, "案件编号")).text)
    card = await bot.received(ZHANG, rf"【新案件】#{number}\b")

    for stale in (f"accept:{number}", f"v0|accept:{number}", "t:1:acc"):
        answer = await bot.answered(await bot.press(ZHANG, stale, card.result))
        assert answer.params["text"] == render("telegram.button_expired")

    # A worker of another grid, and a resident forging a staff button: refused, nothing changes.
    answer = await bot.answered(await bot.press(ZHAO, f"v1|accept:{number}", card.result))
    assert answer.params["text"] == render("staff.not_allowed", number=number)
    before = len(bot.fake.sent(resident))
    answer = await bot.answered(await bot.press(resident, f"v1|accept:{number}"))
    assert answer.params["text"] == render("chat.staff_only")
    await bot.received(resident, re.escape(render("chat.staff_only")[:10]), after=before)
    assert await bot.scalar(select(Case.status).where(Case.id == number)) == "assigned"


async def test_location_pin_sticker_and_stats(servers: Servers) -> None:
    bot = await servers.get("polling-sqlite")
    resident = new_user()
    await bot.say(resident, location=(31.2304, 121.4737))
    await bot.received(resident, re.escape(render("report.ask_description")[:8]))
    await bot.say(resident, sticker=True)
    await bot.received(resident, re.escape(render("telegram.unsupported")[:8]))

    before = len(bot.fake.sent(CHEN))
    await bot.say(CHEN, "/stats")
    await bot.received(CHEN, "幸福社区", after=before)
    before = len(bot.fake.sent(ZHANG))
    await bot.say(ZHANG, "/stats")
    await bot.received(ZHANG, re.escape(render("staff.admin_only")), after=before)


async def test_worker_transfers_with_buttons(servers: Servers) -> None:
    bot = await servers.get("polling-sqlite")
    resident = new_user()
    await bot.say(resident, "5号楼电梯里贴了好多小广告")
    number = case_number((await bot.received(resident, "案件编号")).text)
    card = await bot.received(ZHANG, rf"【新案件】#{number}\b")
    data = {b["text"]: b["callback_data"] for b in card.buttons}
    await bot.answered(await bot.press(ZHANG, data[render("button.transfer")], card.result))
    choice = await bot.received(ZHANG, re.escape(render("staff.ask_transfer")[:8]))
    targets = {b["text"]: b["callback_data"] for b in choice.buttons}
    await bot.answered(await bot.press(ZHANG, targets["李娜"], choice.result))
    await bot.received(LI, rf"【新案件】#{number}\b")
    await bot.received(ZHANG, re.escape(render("staff.transferred_ok", number=number, name="李娜")))
    assert await bot.scalar(select(Case.assignee_id).where(Case.id == number)) == "li"
    # Both the choice and the card lose their buttons: the case is someone else's now.
    await wait_until(lambda: bot.cleared(card) and bot.cleared(choice), "the spent keyboards to go")

    # 已处理 then a photo with the note as its caption: the resident gets the photo and the note.
    li_card = await bot.received(LI, rf"【新案件】#{number}\b")
    li_data = {b["text"]: b["callback_data"] for b in li_card.buttons}
    await bot.answered(await bot.press(LI, li_data[render("button.resolve")], li_card.result))
    await bot.received(LI, rf"请回复 #{number} 的处理说明")
    await bot.say(LI, photo=["after-small", "after-large"], caption="已撕掉并清洗墙面")
    told = await bot.received(resident, rf"#{number} 已处理完毕")
    assert told.method == "sendPhoto" and told.params["photo"] == "after-large"
    assert "已撕掉并清洗墙面" in told.text and told.buttons
    await wait_until(lambda: bot.cleared(li_card), "the resolved card's buttons to go")


async def test_admin_triages_and_assigns(servers: Servers) -> None:
    bot = await servers.get("webhook-sqlite")
    resident = new_user()
    await bot.say(resident, "垃圾桶满了好几天没人清")
    number = case_number((await bot.received(resident, "请问具体在哪里")).text)
    await bot.say(resident, "不知道")
    await bot.received(CHEN, rf"【待分拣】#{number}\b")
    before = len(bot.fake.sent(CHEN))
    await bot.say(CHEN, "/triage")
    await bot.received(CHEN, rf"#{number} ", after=before)
    await bot.say(CHEN, f"/assign {number} zhao")
    card = await bot.received(ZHAO, rf"【新案件】#{number}\b")
    assert card.buttons
    await bot.received(CHEN, rf"#{number} 已分派给赵磊")

    # A case in a grid with no one for it comes to the admins with a button per worker there.
    await bot.say(resident, "13号楼下水道堵了")
    triage = await bot.received(CHEN, r"【待分拣】#\d+ .*\n.*13号楼")
    number = case_number(triage.text)
    buttons = {b["text"]: b["callback_data"] for b in triage.buttons}
    await bot.answered(await bot.press(CHEN, buttons["吴强"], triage.result))
    await bot.received(WU, rf"【新案件】#{number}\b")
    assert await bot.scalar(select(Case.assignee_id).where(Case.id == number)) == "wu"


async def test_staff_binds_with_an_invite_code(servers: Servers) -> None:
    bot = await servers.get("webhook-sqlite")
    await bot.say(CHEN, "/invite wang")
    invite = await bot.received(CHEN, "邀请码")
    code = re.search(r"绑定 ([A-Z0-9]{8})", invite.text)
    assert code, invite.text
    newcomer = new_user()
    await bot.say(newcomer, f"绑定 {code.group(1)}")
    await bot.received(newcomer, "绑定成功")
    await bot.say(newcomer, "/cases")
    await bot.received(newcomer, "待办案件|没有待办")


@pytest.mark.parametrize("name", ["polling-sqlite", "webhook-sqlite"])
async def test_a_forged_button_number_or_a_senderless_update_is_dropped_not_retried_for_ever(
    servers: Servers, name: str
) -> None:
    bot = await servers.get(name)
    resident = new_user()
    # 20 digits overflowed the database's integer before any permission check: 503 on every delivery.
    forged = await bot.press(resident, "v1|accept:99999999999999999999")  # webhook: asserts 200
    answer = await bot.answered(forged)
    assert answer.params["text"] == render("chat.old_button")
    # A message without its sender ("from"): acknowledged and dropped.
    senderless = bot.fake.message(resident, "1号楼门口有小广告")
    del senderless["message"]["from"]
    await bot.deliver(senderless)
    await bot.confirmed(senderless)
    assert await bot.scalar(select(Case.id).where(Case.reporter_external == str(resident))) is None
    # The resident is served as usual afterwards.
    await bot.say(resident, "B座门口有小广告")
    await bot.received(resident, "案件编号")


@pytest.mark.parametrize("name", ["polling-sqlite", "webhook-sqlite"])
async def test_a_sender_flooding_the_bot_is_told_once_and_not_stored(servers: Servers, name: str) -> None:
    bot = await servers.get(name)
    flooder, neighbour = new_user(), new_user()
    updates = [bot.fake.message(flooder, f"{i}号楼垃圾没人收") for i in range(100)]
    if bot.mode == "polling":
        for update in updates:
            bot.fake.push(update)
    else:
        for update in updates:
            await bot.deliver(update)  # each answered 200: Telegram must not send it again
    too_fast = re.escape(render("telegram.too_fast"))
    await bot.received(flooder, too_fast)
    await bot.confirmed(updates[-1])
    # The neighbour is served, and by then every one of the flood's updates has been dealt with.
    await bot.say(neighbour, "3号楼楼道有小广告")
    await bot.received(neighbour, "案件编号")
    stored = select(func.count()).select_from(InboundMessage).where(InboundMessage.sender == str(flooder))
    count = await bot.scalar(stored)
    assert 1 <= count <= 40, count  # a burst of 20, then one every two seconds
    assert sum(bool(re.search(too_fast, c.text)) for c in bot.fake.sent(flooder)) == 1


async def test_at_debug_the_log_holds_no_secret_invite_code_or_health_word(tmp_path: Path) -> None:
    bot, drop = await start_server("webhook", "sqlite", tmp_path, log_level="DEBUG")
    try:
        resident = new_user()
        await bot.say(resident, "我是孕妇，7号楼楼道里的垃圾好几天没人收了")
        await bot.received(resident, "案件编号")
        await bot.say(CHEN, "/invite wang")
        invite = await bot.received(CHEN, "邀请码")
        code = re.search(r"绑定 ([A-Z0-9]{8})", invite.text)
        assert code, invite.text
    finally:
        await bot.stop()
        await drop()
    log = bot.log.read_text(encoding="utf-8")
    assert "DEBUG" in log  # the server did log at DEBUG
    secret = bot.fake.webhook["secret_token"]
    for leaked in (secret, TOKEN.partition(":")[2], code.group(1), "孕妇", "垃圾好几天没人收"):
        assert leaked not in log, leaked


# -- units ---------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_spaces_messages_to_one_chat() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.reserve(42) == 0
    assert limiter.reserve(42) == pytest.approx(1.0)
    assert limiter.reserve(43) == 0  # another chat is not held up
    clock.now += 0.4
    assert limiter.reserve(42) == pytest.approx(0.6)
    clock.now += 0.6
    assert limiter.reserve(42) == 0


def test_limiter_keeps_thirty_a_second_overall() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for chat in range(30):
        assert limiter.reserve(chat + 1) == 0
    assert limiter.reserve(999) == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.reserve(999) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.reserve(999) == 0


async def test_limiter_keeps_twenty_a_minute_per_group() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    start = clock.now
    for _ in range(20):
        await limiter.acquire(-100123, sleep=clock.sleep)  # 1 s apart: the per-chat rule
    assert clock.now - start == pytest.approx(19.0)
    assert limiter.delay(-100123) == pytest.approx(41.0)  # the 21st waits for the first to age out
    assert limiter.delay(-100999) == 0 and limiter.delay(555) == 0
    await limiter.acquire(-100123, sleep=clock.sleep)
    assert clock.now - start == pytest.approx(60.0)
    assert limiter.delay("@channel") == 0


def test_limiter_books_later_slots_in_order() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.reserve(42) == 0
    assert [limiter.book(42) for _ in range(3)] == pytest.approx([1.0, 2.0, 3.0])
    assert limiter.chat_delay(42) == pytest.approx(4.0)  # a newcomer queues behind the bookings
    assert limiter.reserve(43) == 0
    group = -100777
    slots = [limiter.book(group) for _ in range(22)]
    assert slots[:20] == pytest.approx([float(n) for n in range(20)])
    assert slots[20:] == pytest.approx([60.0, 61.0])  # the 21st waits for the first to age out


def test_limiter_spaces_bookings_that_go_late() -> None:
    # Two messages booked 1 s apart whose retries come late (the drain was busy) must still reach the
    # chat 1 s apart, counted from when the first actually went, not from its booked slot.
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert limiter.reserve(42) == 0
    first, second = (clock.now + limiter.book(42) for _ in range(2))
    clock.now += 2.5  # both slots have passed
    assert limiter.booked_delay(42, first) == 0
    limiter.record_booked(42)
    assert limiter.booked_delay(42, second) == pytest.approx(1.0)
    assert limiter.chat_delay(42) == pytest.approx(1.0)  # nor may a message that was not booked
    clock.now += 1.0
    assert limiter.booked_delay(42, second) == 0
    assert limiter.booked_delay(43, clock.now) == 0  # another chat is not held up


def test_limiter_pause_holds_one_chat() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.pause(7, 5)
    assert limiter.delay(7) == pytest.approx(5.0)
    assert limiter.delay(8) == 0


def test_callback_data_is_versioned() -> None:
    assert keyboards.encode("accept:12") == "v1|accept:12"
    assert keyboards.decode("v1|rate:12:good") == "rate:12:good"
    for stale in (None, "", "accept:12", "v0|accept:12", "v1|", "v2|accept:12"):
        assert keyboards.decode(stale) is None
    assert keyboards.encode("assign:1:" + "x" * 60) is None  # over Telegram's 64 bytes
    assert keyboards.case_number("rate:12:good") == 12 and keyboards.case_number("help") is None
    for forged in ("accept:99999999999999999999", "accept:１２", "accept:²", "accept:-1"):
        assert keyboards.case_number(forged) is None, forged


def test_keyboard_renders_whatever_buttons_the_core_sends() -> None:
    buttons = [
        {"label": "接单", "action": "accept:3"},
        {"label": "已处理", "action": "resolve:3"},
        {"label": "转派", "action": "transfer:3"},
        {"label": "太长", "action": "x" * 80},
    ]
    markup = keyboards.keyboard(buttons)
    assert markup is not None
    rows = [[b.callback_data for b in row] for row in markup.inline_keyboard]
    assert rows == [["v1|accept:3", "v1|resolve:3"], ["v1|transfer:3"]]
    assert keyboards.keyboard([]) is None
    rest = keyboards.without(markup, "v1|accept:3")
    assert rest is not None and [b.text for row in rest.inline_keyboard for b in row] == ["已处理", "转派"]
    single = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="v1|accept:1")]])
    assert keyboards.without(single, "v1|accept:1") is None


def test_updates_become_inbound_messages() -> None:
    fake = FakeTelegram()
    bot = Bot(TOKEN)
    photo = Update.de_json(fake.message(7, photo=["s", "m", "l"], caption="3号楼有积水", update_id=55), bot)
    inbound = inbound_from(photo)
    assert (inbound.channel, inbound.sender, inbound.message_id) == ("telegram", "7", "55")
    assert inbound.photo == "l" and inbound.text == "3号楼有积水"
    pin = inbound_from(Update.de_json(fake.message(7, location=(31.2, 121.4)), bot))
    assert (pin.latitude, pin.longitude, pin.text) == (31.2, 121.4, None)
    command = inbound_from(
        Update.de_json(fake.message(7, "/my@shequtong_test_bot"), bot), "shequtong_test_bot"
    )
    assert command.text == "/my"


class StubBot:
    """Records sends; raises the next queued error instead, if any."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.errors: list[Exception] = []

    async def _call(self, method: str, chat_id: Any, **kwargs: Any) -> None:
        self.calls.append((method, chat_id, kwargs))
        if self.errors:
            raise self.errors.pop(0)

    async def send_message(self, chat_id: Any, text: str, **kwargs: Any) -> None:
        await self._call("sendMessage", chat_id, text=text, **kwargs)

    async def send_photo(self, chat_id: Any, photo: str, **kwargs: Any) -> None:
        await self._call("sendPhoto", chat_id, photo=photo, **kwargs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB's RetryAfter warns about itself
async def test_sender_maps_telegram_answers(sessions: async_sessionmaker[AsyncSession]) -> None:
    from telegram.error import BadRequest, NetworkError, RetryAfter

    from bot.channels.telegram.sender import TelegramSender
    from handlers.kernel.outbox import Button, DeliveryError, Outbound, claim, enqueue
    from storage.models import utcnow

    clock = FakeClock()
    bot = StubBot()
    sender = TelegramSender(bot, sessions, RateLimiter(clock=clock))  # type: ignore[arg-type]
    async with sessions.begin() as session:
        rows = [
            enqueue(session, Outbound("telegram", "11", "一", buttons=(Button("接单", "accept:1"),))),
            enqueue(session, Outbound("telegram", "11", "二")),
            enqueue(session, Outbound("telegram", "12", "三", photo="gone-file-id")),
        ]
    assert len(rows) == 3
    first, second, third = await claim(sessions, "telegram", utcnow())  # as the drain loop does

    await sender.send(first)
    method, chat, kwargs = bot.calls[-1]
    assert (method, chat) == ("sendMessage", 11)
    assert kwargs["reply_markup"].inline_keyboard[0][0].callback_data == "v1|accept:1"

    with pytest.raises(DeliveryError) as held:  # 1/s per chat: booked a second later, not sent
        await sender.send(second)
    assert held.value.retry_after == pytest.approx(1.0) and not held.value.permanent
    assert len(bot.calls) == 1
    clock.now += 1.0
    await sender.send(second)  # its booked slot
    assert bot.calls[-1][2]["text"] == "二"

    bot.errors = [BadRequest("Wrong file identifier")]  # a photo Telegram forgot: the text still goes
    await sender.send(third)
    assert [c[0] for c in bot.calls[-2:]] == ["sendPhoto", "sendMessage"]

    clock.now += 5
    for error, retry_after, permanent in (
        (RetryAfter(7), 7.0, False),
        (BadRequest("Chat not found"), None, True),
        (NetworkError("connection reset"), None, False),
    ):
        clock.now += 10
        bot.errors = [error]
        with pytest.raises(DeliveryError) as failed:
            await sender.send(second)
        assert (failed.value.retry_after, failed.value.permanent) == (retry_after, permanent)


def test_worker_processes_split_the_rate_limits() -> None:
    from bot.channels.telegram.limiter import RateLimiter

    alone, shared = RateLimiter.shared_by(1), RateLimiter.shared_by(2)
    assert (alone.per_second, alone.chat_interval, alone.group_per_minute) == (30, 1.0, 20)
    assert (shared.per_second, shared.chat_interval, shared.group_per_minute) == (15, 2.0, 10)
    now = [0.0]
    limiter = RateLimiter.shared_by(3, clock=lambda: now[0])
    assert limiter.delay("12345") == 0.0
    limiter.record("12345")
    assert limiter.delay("12345") == pytest.approx(3.0)  # three processes: each waits 3 s per chat
    now[0] += 3.0
    assert limiter.delay("12345") == 0.0


# -- issue #12: pending questions, state-valid buttons (the kernel's rules, seen on Telegram) ----------


async def test_a_report_while_asked_where_is_its_own_case_and_view_buttons_follow_the_state(
    servers: Servers,
) -> None:
    bot = await servers.get("webhook-sqlite")
    resident = new_user()
    await bot.say(resident, "垃圾桶满了好几天没人清")
    first = case_number((await bot.received(resident, "请问具体在哪里")).text)
    before = len(bot.fake.sent(resident))
    await bot.say(resident, "对了，A座楼道里贴满了小广告")
    ack = await bot.received(resident, "案件编号", after=before)
    second = case_number(ack.text)
    assert second != first and "张伟" in ack.text
    await bot.received(resident, rf"#{first} 还没有说明位置", after=before)
    await bot.received(CHEN, rf"【待分拣】#{first}\b")
    card = await bot.received(ZHANG, rf"【新案件】#{second}\b")
    assert await bot.scalar(select(Case.location_text).where(Case.id == first)) is None

    # Accepted, the case's 查看 offers no 接单 (as a button or otherwise).
    data = {b["text"]: b["callback_data"] for b in card.buttons}
    await bot.answered(await bot.press(ZHANG, data[render("button.accept")], card.result))
    before = len(bot.fake.sent(ZHANG))
    await bot.say(ZHANG, f"查看 {second}")
    view = await bot.received(ZHANG, rf"案件 #{second}\b", after=before)
    shown = {b["callback_data"] for b in view.buttons}
    assert f"v1|accept:{second}" not in shown and f"v1|resolve:{second}" in shown


async def test_a_bare_rating_with_two_fixed_cases_asks_which_with_a_button_each(servers: Servers) -> None:
    bot = await servers.get("polling-sqlite")
    resident = new_user()
    numbers = []
    for text in ("农贸市场门口贴满了小广告", "幸福路边上垃圾堆了好几天没人清"):
        before = len(bot.fake.sent(resident))
        await bot.say(resident, text)
        numbers.append(case_number((await bot.received(resident, "案件编号", after=before)).text))
    first, second = numbers
    for number in numbers:  # fixed in this order: the second one last
        await bot.say(ZHANG, f"完成 {number} 已清理")
        await bot.received(resident, rf"#{number} 已处理完毕")
    before = len(bot.fake.sent(resident))
    await bot.say(resident, "2")
    asked = await bot.received(resident, "是对哪一个", after=before)
    assert [b["callback_data"] for b in asked.buttons] == [f"v1|bad:{second}", f"v1|bad:{first}"]
    statuses = select(Case.status).where(Case.id.in_(numbers)).distinct()
    assert await bot.scalar(statuses) == "resolved"  # nothing rated by guess

    await bot.answered(await bot.press(resident, f"v1|bad:{first}", asked.result))
    await bot.received(resident, rf"原因.*#{first}")
    await bot.say(resident, "还有好多没撕干净")
    await bot.received(resident, rf"#{first} 已重新交给")
    assert await bot.scalar(select(Case.status).where(Case.id == first)) == "assigned"
    assert await bot.scalar(select(Case.status).where(Case.id == second)) == "resolved"


# -- building codes (一楼一码): t.me/<bot>?start=<scene> arrives as "/start <scene>" --------------------


async def scene_of(bot: BotServer, building: str | None = None, place: str | None = None) -> str:
    from handlers.community.model import parse_community
    from handlers.community.scenes import SECRET_KEY, community_code, find_target, sign
    from handlers.kernel.token_store import shared_secret
    from handlers.kernel.yaml_text import load_yaml

    async with bot.sessions().begin() as session:
        secret = (await shared_secret(session, SECRET_KEY)).encode()
    community = parse_community(load_yaml(COMMUNITY))
    target = find_target(community, building, place)
    assert target is not None
    return sign(secret, community_code(community), target)


def test_a_start_payload_is_a_scene_and_an_invite_code_stays_text() -> None:
    fake = FakeTelegram()
    bot = Bot(TOKEN)
    scan = inbound_from(Update.de_json(fake.message(7, "/start SQ_bMWFiiDVT_9fDm0Y4QCrkwUF7m"), bot))
    assert (scan.scene, scan.text) == ("SQ_bMWFiiDVT_9fDm0Y4QCrkwUF7m", None)
    invite = inbound_from(Update.de_json(fake.message(7, "/start K7M2QX9A"), bot))
    assert (invite.scene, invite.text) == (None, "/start K7M2QX9A")


@pytest.mark.parametrize(
    "name", ["webhook-sqlite", pytest.param("webhook-postgres", marks=pytest.mark.postgres)]
)
async def test_a_deep_link_scan_greets_binds_and_places_the_next_report(servers: Servers, name: str) -> None:
    bot = await servers.get(name)
    resident = new_user()
    scene = await scene_of(bot, "8")
    update = await bot.say(resident, f"/start {scene}")
    await bot.received(resident, "^您好，这里是幸福社区8号楼")
    await bot.deliver(update, redeliver=True)  # Telegram's redelivery: handled once
    await bot.say(resident, "门口垃圾桶满了好几天没人清")
    mine = select(Case).where(Case.reporter_external == str(resident))

    async def reported() -> Case | None:
        async with bot.sessions()() as session:
            return await session.scalar(mine)

    case = await wait_until(reported, f"the case of {resident}")  # acknowledged, or offered as a duplicate
    assert (case.building, case.location_text) == ("8", "8号楼")
    assert sum("这里是幸福社区8号楼" in c.text for c in bot.fake.sent(resident)) == 1
    before = len(bot.fake.sent(resident))
    await bot.say(resident, "/start SQ_bAAAAAAAA_BBBBBBBBBBBBBBBB")
    await bot.received(resident, "无法识别", after=before)
