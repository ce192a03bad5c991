"""The WeCom channel adapter for ``outreach-bot serve``: route ``/wecom``, the inbox worker and the
outbox sender, with the access token shared through the database (or Redis) like the Official
Account's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx
from starlette.routing import BaseRoute, Route

from bot.channels.wechat.adapter import platform_http, quiet_http_logs, start_inbox, token_store
from bot.channels.wechat.inbox import Inbox
from bot.channels.wecom.callback import WeComCallback
from bot.channels.wecom.client import WeComClient
from bot.channels.wecom.limits import MemberLimiter
from bot.channels.wecom.sender import CHANNEL, WeComSender
from bot.channels.wecom.spec import configured
from handlers.kernel.ports import Sender

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.kernel.channel_ports import AdapterContext


class WeComAdapter:
    name = CHANNEL

    def __init__(self, settings: Settings) -> None:
        assert configured(settings)
        assert settings.wecom_corp_id and settings.wecom_agent_id is not None
        assert settings.wecom_token and settings.wecom_aes_key
        self.settings = settings
        self.callback = WeComCallback(
            settings.wecom_token.get_secret_value(),
            settings.wecom_aes_key.get_secret_value(),
            settings.wecom_corp_id,
            settings.wecom_agent_id,
        )
        self.http: httpx.AsyncClient | None = None
        self.client: WeComClient | None = None
        self.sender: WeComSender | None = None
        self.inbox: Inbox | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/wecom", self.callback.verify, methods=["GET"]),
            Route("/wecom", self.callback.receive, methods=["POST"]),
        ]

    def senders(self) -> Sequence[Sender]:
        return [self.sender] if self.sender is not None else []

    async def start(self, context: AdapterContext) -> None:
        quiet_http_logs()
        settings = self.settings
        assert settings.wecom_corp_id and settings.wecom_agent_id is not None and settings.wecom_secret
        services = context.services
        self.inbox = start_inbox(self.callback, context, CHANNEL)
        self.http = platform_http()
        self.client = WeComClient(
            settings.wecom_corp_id,
            settings.wecom_agent_id,
            settings.wecom_secret.get_secret_value(),
            settings.wecom_api_url,
            token_store(settings, services.sessions),
            http=self.http,
            clock=services.clock,
        )
        self.sender = WeComSender(
            self.client,
            services.sessions,
            MemberLimiter.shared_by(settings.serve_workers),
            clock=services.clock,
        )

    async def stop(self) -> None:
        if self.inbox is not None:
            await self.inbox.stop()
        if self.client is not None:
            await self.client.store.close()
        if self.http is not None:
            await self.http.aclose()
