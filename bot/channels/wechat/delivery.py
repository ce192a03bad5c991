"""The Official Account's outbox delivery for a process that sends without serving (``broadcast
--send``): customer-service, template and subscription messages, and mass sends (群发)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from bot.channels.wechat.adapter import token_store
from bot.channels.wechat.client import WeChatClient
from bot.channels.wechat.mass import WeChatMassSender
from bot.channels.wechat.sender import WeChatSender
from handlers.kernel.ports import Delivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.settings import Settings
    from handlers.community.model import Community


async def open_delivery(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], community: Community
) -> Delivery:
    assert settings.wechat_app_id and settings.wechat_app_secret
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
    client = WeChatClient(
        settings.wechat_app_id,
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_api_url,
        token_store(settings, sessions),
        http=http,
    )
    sender = WeChatSender(
        client,
        sessions,
        templates=settings.wechat_templates,
        subscribe_templates=settings.wechat_subscribe_templates,
        timezone=community.timezone,
    )
    return Delivery(senders=[sender], closers=[http.aclose], mass=WeChatMassSender(client))
