"""Telegram's outbox delivery for a process that sends without serving (``broadcast --send``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import Bot

from bot.channels.telegram.sender import TelegramSender
from handlers.kernel.ports import Delivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.settings import Settings
    from handlers.community.model import Community


async def open_delivery(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], _community: Community
) -> Delivery:
    assert settings.telegram_token is not None
    bot = Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_url)
    await bot.initialize()
    return Delivery(senders=[TelegramSender(bot, sessions)], closers=[bot.shutdown])
