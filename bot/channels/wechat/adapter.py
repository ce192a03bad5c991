"""The WeChat Official Account channel adapter for ``outreach-bot serve``: route ``/wechat`` and the
outbox sender, with the access token shared through the database (or Redis)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import BaseRoute, Route

from bot.channels.wechat.callback import CHANNEL, WeChatCallback
from bot.channels.wechat.client import DatabaseTokenStore, RedisTokenStore, TokenStore, WeChatClient
from bot.channels.wechat.inbox import Inbox
from bot.channels.wechat.mass import WeChatMassSender
from bot.channels.wechat.sender import WeChatSender
from handlers.kernel.ports import Sender

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.kernel.channel_ports import AdapterContext

log = logging.getLogger(__name__)


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and ours carry the access token in the query string."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def start_inbox(callback: Any, context: AdapterContext, channel: str) -> Inbox:
    """Wire a WeChat-style callback (WeChat, WeCom) to the turn context and start its inbox: stored
    callbacks are handled after the 5-second answer, while no callback is being answered."""
    callback.context = context
    callback.clock = context.services.clock
    inbox = Inbox(context.services.sessions, channel, context.services.clock)
    callback.inbox = inbox
    inbox.start(callback.handle_stored, busy=lambda: callback.active > 0)
    return inbox


def platform_http() -> httpx.AsyncClient:
    """The HTTP client a channel's API calls share (bounded, with timeouts)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0), limits=httpx.Limits(max_connections=20)
    )


def token_store(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> TokenStore:
    if settings.redis_url:
        return RedisTokenStore(settings.redis_url)
    return DatabaseTokenStore(sessions)


class WeChatAdapter:
    name = CHANNEL

    def __init__(self, settings: Settings) -> None:
        assert settings.wechat_token and settings.wechat_app_id and settings.wechat_app_secret
        self.settings = settings
        aes = settings.wechat_aes_key.get_secret_value() if settings.wechat_aes_key else None
        self.callback = WeChatCallback(
            settings.wechat_token.get_secret_value(),
            settings.wechat_app_id,
            aes,
            compat=settings.wechat_compat_mode,
            account_id=settings.wechat_account_id,
        )

        self.client: WeChatClient | None = None
        self.sender: WeChatSender | None = None
        self.http: httpx.AsyncClient | None = None
        self.inbox: Inbox | None = None

    def routes(self) -> Sequence[BaseRoute]:
        # The callback object is a bare ASGI app (Starlette routes to it without a Request).
        return [Route("/wechat", self.callback, methods=["GET", "POST"])]

    def hot_routes(self) -> dict[str, WeChatCallback]:
        """``/wechat`` is served before Starlette's middleware and router (see ``bot.server.HotPaths``)."""
        return {"/wechat": self.callback}

    def senders(self) -> Sequence[Sender]:
        return [self.sender] if self.sender is not None else []

    def mass_sender(self) -> WeChatMassSender | None:
        """The channel's mass delivery (群发) for broadcasts, over the same client and access token."""
        return WeChatMassSender(self.client) if self.client is not None else None

    async def start(self, context: AdapterContext) -> None:
        quiet_http_logs()
        settings = self.settings
        if settings.wechat_aes_key and settings.wechat_compat_mode:
            log.warning(
                "wechat: compatible mode (OUTREACH_WECHAT_COMPAT_MODE): plaintext callbacks are accepted "
                "and their signature does not cover the body; switch the account to safe mode"
            )
        elif not settings.wechat_aes_key:
            log.warning("wechat: plaintext mode (no OUTREACH_WECHAT_AES_KEY): callbacks are not encrypted")
        assert settings.wechat_app_id and settings.wechat_app_secret
        services = context.services
        self.inbox = start_inbox(self.callback, context, CHANNEL)
        self.http = platform_http()
        self.client = WeChatClient(
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            settings.wechat_api_url,
            token_store(settings, services.sessions),
            http=self.http,
            clock=services.clock,
        )
        self.sender = WeChatSender(
            self.client,
            services.sessions,
            templates=settings.wechat_templates,
            subscribe_templates=settings.wechat_subscribe_templates,
            timezone=services.community.timezone,
            clock=services.clock,
        )

    async def stop(self) -> None:
        if self.inbox is not None:
            await self.inbox.stop()
        if self.client is not None:
            await self.client.store.close()
        if self.http is not None:
            await self.http.aclose()
