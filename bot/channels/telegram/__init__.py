"""The Telegram channel (python-telegram-bot): residents, grid workers and admins."""

from bot.channels.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
