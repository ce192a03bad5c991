"""The Telegram channel adapter: a python-telegram-bot ``Application`` inside our server.

An update is stored before Telegram hears that it arrived. Webhook mode
(``OUTREACH_TELEGRAM_WEBHOOK_URL`` set): our Starlette route ``POST /telegram/webhook`` checks Telegram's
``X-Telegram-Bot-Api-Secret-Token`` header in constant time, refuses bodies over 1 MB (by
Content-Length and while reading) and JSON nested deeper than any update, handles the update, and
answers 200 only once its inbound row is committed; otherwise 503, and Telegram sends it again (the
core recognises a redelivery by its update_id). Polling mode (no webhook URL): our own getUpdates
loop, not PTB's ``Updater``, which confirms every update it fetched; ours confirms (moves the offset
past) only stored ones, and fetches the rest again after a pause.

Start-up never depends on Telegram being reachable: ``getMe`` / ``setWebhook`` are tried once while the
server starts and, if Telegram does not answer, again in the background with back-off, while the
other channels serve. ``status()`` says which (``/readyz``). Errors are logged as one line, masked
(``handlers.kernel.privacy.mask_log``: never the bot token).

Either way updates of one chat are handled one after another, different chats concurrently
(``PerChatUpdateProcessor``), and replies leave through the outbox and ``TelegramSender``.
``OUTREACH_TELEGRAM_API_URL`` points the bot at any Bot API server (a local one, or the tests' fake).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes

from bot.channels.telegram.flood import FloodGuard
from bot.channels.telegram.handlers import BotContext, TelegramDeps, bot_commands, one_line, register, stored
from bot.channels.telegram.limiter import RateLimiter
from bot.channels.telegram.sender import CHANNEL, TelegramSender
from handlers.kernel.ports import Sender
from storage.database import is_sqlite

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.kernel.channel_ports import AdapterContext

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
POLL_TIMEOUT = 10  # seconds a getUpdates call waits for news
MAX_CONCURRENT_UPDATES = 64
MAX_BODY = 1 << 20  # bytes; Telegram's updates are a few kilobytes
MAX_DEPTH = 32  # nesting of JSON objects and arrays; a real update nests about ten deep
START_RETRY = (1.0, 30.0)  # seconds between start attempts: first, at most (doubling)
POLL_RETRY = (0.5, 30.0)  # seconds before fetching again after a failure: first, at most


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Handle different chats concurrently but one chat's updates in order, so a quick second message
    never races the first (the core keeps per-user dialog state)."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        if key is None:
            await coroutine
            return
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None


def _file_url(api_url: str) -> str | None:
    return api_url[: -len("/bot")] + "/file/bot" if api_url.endswith("/bot") else None


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    assert settings.telegram_token is not None
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(PerChatUpdateProcessor())
        .updater(None)  # polling is ours: see _poll
    )
    file_url = _file_url(settings.telegram_api_url)
    if file_url is not None:
        builder = builder.base_file_url(file_url)
    application = builder.build()
    register(application)
    return application


def json_depth_ok(data: object, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` nests at most ``limit`` deep (walked without recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (stops reading there)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class TelegramAdapter:
    name = CHANNEL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.webhook_url = settings.telegram_webhook_url
        secret = settings.telegram_webhook_secret
        self.secret = secret.get_secret_value() if secret is not None else secrets.token_urlsafe(32)
        self.application = build_application(settings)
        self.limiter = RateLimiter.shared_by(settings.serve_workers)
        self.flood = FloodGuard(self.application.bot)
        self._sender: TelegramSender | None = None
        self._ready = False
        self._state = "starting"
        self._task: asyncio.Task[None] | None = None

    @property
    def polling(self) -> bool:
        return self.webhook_url is None

    def routes(self) -> Sequence[BaseRoute]:
        if self.polling:
            return []
        return [Route(WEBHOOK_PATH, self.webhook, methods=["POST"])]

    def senders(self) -> Sequence[Sender]:
        return [self._sender] if self._sender is not None else []

    def status(self) -> str:
        """"ok", or what keeps the channel from working (for /readyz)."""
        return self._state

    @property
    def deps(self) -> TelegramDeps:
        deps: TelegramDeps = self.application.bot_data["deps"]
        return deps

    async def start(self, context: AdapterContext) -> None:
        app = context
        self.application.bot_data["deps"] = TelegramDeps(
            conversation=app.conversation,
            services=app.services,
            wake=lambda: context.wake(CHANNEL),
            writes=asyncio.Lock() if is_sqlite(self.settings.database_url) else contextlib.nullcontext(),
        )
        self._sender = TelegramSender(self.application.bot, app.services.sessions, self.limiter)
        self._sender.ready = False  # the drain loop waits until getMe has answered
        try:
            await self._connect()
        except Exception as exc:  # Telegram unreachable, or the token refused: keep trying, serve the rest
            self._task = asyncio.create_task(self._keep_connecting(exc), name="telegram-start")
            return
        self._started()

    async def _connect(self) -> None:
        await self.application.initialize()  # getMe: fails on a wrong token or an unreachable API
        bot = self.application.bot
        with contextlib.suppress(TelegramError):
            await bot.set_my_commands(bot_commands())
        if self.webhook_url is not None:
            await bot.set_webhook(
                self.webhook_url, secret_token=self.secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        else:
            await bot.delete_webhook()  # getUpdates is refused while a webhook is set
        if not self.application.running:
            await self.application.start()

    async def _keep_connecting(self, first: Exception) -> None:
        error, delay = first, START_RETRY[0]
        while True:
            self._state = f"starting: retrying in {delay:g} s ({one_line(error)})"
            log.warning("telegram: could not start (%s); retrying in %g s", one_line(error), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, START_RETRY[1])
            try:
                await self._connect()
            except Exception as exc:
                error = exc
                continue
            self._started()
            return

    def _started(self) -> None:
        self._ready = True
        self._state = "ok"
        if self._sender is not None:
            self._sender.ready = True
        if self.polling:
            self._task = asyncio.create_task(self._poll(), name="telegram-poll")
        mode = "polling" if self.polling else "webhook"
        log.info("telegram: %s mode as @%s", mode, self.application.bot.username)

    async def stop(self) -> None:
        self._ready = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flood.close()
        application = self.application
        if application.running:
            await application.stop()
        await application.shutdown()

    async def process(self, update: Update) -> bool:
        """Handle one update; True when it is stored (or needs no storing: nothing failed, or its
        sender is over the limit and it is dropped)."""
        if not self.flood.admit(update):
            return True
        application = self.application
        failed = self.deps.failed_updates
        failed.discard(update.update_id)
        await application.update_processor.process_update(update, application.process_update(update))
        if update.update_id not in failed:
            return True
        failed.discard(update.update_id)
        # A turn that failed may still have kept the message (status failed, the sender told): then
        # it is stored, and a redelivery would only be recognised as one.
        return await stored(self.deps, update.update_id)

    async def _poll(self) -> None:
        """getUpdates with an offset that passes only stored updates: an update that could not be
        stored (the database down) is fetched again after a pause, and so is everything after it
        (the stored ones are recognised as redeliveries)."""
        bot = self.application.bot
        offset: int | None = None
        fetch_delay = store_delay = POLL_RETRY[0]
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES)
                )
            except Exception as exc:  # Telegram unreachable: fetch again later, never stop polling
                self._state = f"degraded: getUpdates failing ({one_line(exc)})"
                log.warning("telegram: getUpdates failed (%s); again in %g s", one_line(exc), fetch_delay)
                await asyncio.sleep(fetch_delay)
                fetch_delay = min(fetch_delay * 2, POLL_RETRY[1])
                continue
            self._state, fetch_delay = "ok", POLL_RETRY[0]
            if not updates:
                continue
            done = await asyncio.gather(*(self.process(u) for u in updates), return_exceptions=True)
            lost = [u.update_id for u, ok in zip(updates, done, strict=True) if ok is not True]
            if not lost:
                offset, store_delay = updates[-1].update_id + 1, POLL_RETRY[0]
                continue
            offset = min(lost)
            log.warning(
                "telegram: %d update(s) not stored, from %s; fetching again in %g s",
                len(lost),
                offset,
                store_delay,
            )
            await asyncio.sleep(store_delay)
            store_delay = min(store_delay * 2, POLL_RETRY[1])

    async def webhook(self, request: Request) -> Response:
        """Telegram's POST. Only requests carrying our secret are read; 200 means the update is
        stored, 503 asks Telegram to send it again."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8"), self.secret.encode("utf-8")):
            return Response(status_code=403)
        if not self._ready:
            return Response(status_code=503)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return Response(status_code=413 if length.isdigit() else 400)
        body = await read_body(request)
        if body is None:
            return Response(status_code=413)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
            return Response(status_code=400)
        if not isinstance(data, dict) or not json_depth_ok(data):
            return Response(status_code=400)
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception:  # not an update we can read: retrying would not help
            log.warning("telegram webhook: unreadable update dropped")
            return Response(status_code=200)
        if await self.process(update):
            return Response(status_code=200)
        return Response(status_code=503, headers={"Retry-After": "5"})
