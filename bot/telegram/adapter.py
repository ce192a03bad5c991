"""The Telegram channel adapter: a python-telegram-bot ``Application`` inside our server.

Webhook mode (``OUTREACH_TELEGRAM_WEBHOOK_URL`` set): no PTB ``Updater``; our Starlette route
``POST /telegram/webhook`` checks Telegram's ``X-Telegram-Bot-Api-Secret-Token`` header and handles the
update before answering, so an update is stored before Telegram hears 200 (a failure makes Telegram
send it again, and the core recognises a redelivery by its update_id). At start the adapter calls
``setWebhook`` with the secret (``OUTREACH_TELEGRAM_WEBHOOK_SECRET``; a random one if unset, fine for
one process). Polling mode (no webhook URL): PTB's ``Updater.start_polling``.

Either way updates of one chat are handled one after another, different chats concurrently
(``PerChatUpdateProcessor``), and replies leave through the outbox and ``TelegramSender``.
``OUTREACH_TELEGRAM_API_URL`` points the bot at any Bot API server (a local one, or the tests' fake).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
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

from bot.settings import Settings
from bot.telegram.handlers import BotContext, TelegramDeps, bot_commands, register
from bot.telegram.limiter import RateLimiter
from bot.telegram.sender import CHANNEL, TelegramSender
from handlers.outbox import Sender
from storage.database import is_sqlite

if TYPE_CHECKING:
    from bot.server import Server

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")
POLL_TIMEOUT = 10  # seconds a getUpdates call waits for news
MAX_CONCURRENT_UPDATES = 64


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


def build_application(settings: Settings, *, polling: bool) -> Application[Any, Any, Any, Any, Any, Any]:
    assert settings.telegram_token is not None
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(PerChatUpdateProcessor())
    )
    file_url = _file_url(settings.telegram_api_url)
    if file_url is not None:
        builder = builder.base_file_url(file_url)
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    register(application)
    return application


class TelegramAdapter:
    name = CHANNEL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.webhook_url = settings.telegram_webhook_url
        secret = settings.telegram_webhook_secret
        self.secret = secret.get_secret_value() if secret is not None else secrets.token_urlsafe(32)
        self.application = build_application(settings, polling=self.webhook_url is None)
        self.limiter = RateLimiter.shared_by(settings.serve_workers)
        self._sender: TelegramSender | None = None
        self._ready = False

    @property
    def polling(self) -> bool:
        return self.webhook_url is None

    def routes(self) -> Sequence[BaseRoute]:
        if self.polling:
            return []
        return [Route(WEBHOOK_PATH, self.webhook, methods=["POST"])]

    def senders(self) -> Sequence[Sender]:
        return [self._sender] if self._sender is not None else []

    async def start(self, server: Server) -> None:
        assert server.app is not None
        app = server.app
        self.application.bot_data["deps"] = TelegramDeps(
            conversation=app.conversation,
            services=app.services,
            wake=lambda: server.wake(CHANNEL),
            writes=asyncio.Lock() if is_sqlite(self.settings.database_url) else contextlib.nullcontext(),
        )
        self._sender = TelegramSender(self.application.bot, app.services.sessions, self.limiter)
        await self.application.initialize()  # getMe: fails fast on a wrong token or API URL
        bot = self.application.bot
        with contextlib.suppress(TelegramError):
            await bot.set_my_commands(bot_commands())
        if self.webhook_url is not None:
            await bot.set_webhook(
                self.webhook_url, secret_token=self.secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        await self.application.start()
        if self.application.updater is not None:
            await self.application.updater.start_polling(
                timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES)
            )
        self._ready = True
        log.info("telegram: %s mode as @%s", "polling" if self.polling else "webhook", bot.username)

    async def stop(self) -> None:
        self._ready = False
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def webhook(self, request: Request) -> Response:
        """Telegram's POST. Only requests carrying our secret are read; the update is handled before
        the answer, so a 200 means it is stored."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8"), self.secret.encode("utf-8")):
            return Response(status_code=403)
        if not self._ready:
            return Response(status_code=503)
        try:
            data = await request.json()
        except ValueError:
            return Response(status_code=400)
        if not isinstance(data, dict):
            return Response(status_code=400)
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception:  # not an update we can read: retrying would not help
            log.warning("telegram webhook: unreadable update dropped")
            return Response(status_code=200)
        application = self.application
        await application.update_processor.process_update(update, application.process_update(update))
        return Response(status_code=200)
