"""WeCom's outbox delivery for a process that sends without serving (``broadcast --send`` to staff)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from bot.channels.wechat.adapter import token_store
from bot.channels.wecom.client import WeComClient
from bot.channels.wecom.limits import MemberLimiter
from bot.channels.wecom.sender import WeComSender
from handlers.kernel.ports import Delivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.settings import Settings
    from handlers.community.model import Community


async def open_delivery(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], _community: Community
) -> Delivery:
    assert settings.wecom_corp_id and settings.wecom_agent_id is not None and settings.wecom_secret
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
    client = WeComClient(
        settings.wecom_corp_id,
        settings.wecom_agent_id,
        settings.wecom_secret.get_secret_value(),
        settings.wecom_api_url,
        token_store(settings, sessions),
        http=http,
    )
    sender = WeComSender(client, sessions, MemberLimiter.shared_by(settings.serve_workers))
    return Delivery(senders=[sender], closers=[http.aclose, client.store.close])
