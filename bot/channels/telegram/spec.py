"""The Telegram channel as the registry sees it: its settings, its key in the community file, and where
its adapter and its outbox delivery live (imported only when the channel runs)."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr, field_validator

from bot.channels.spec import ChannelSpec


class TelegramSettings(BaseModel):
    telegram_token: SecretStr | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"

    @field_validator("telegram_api_url")
    @classmethod
    def _bot_path(cls, value: str) -> str:
        # python-telegram-bot appends the token straight to this base, so it must end in /bot;
        # accept the server's address as people write it (https://host, https://host/) too.
        value = value.rstrip("/")
        return value if value.endswith("/bot") else value + "/bot"


def configured(settings: TelegramSettings) -> bool:
    return settings.telegram_token is not None


SPEC = ChannelSpec(
    name="telegram",
    settings=TelegramSettings,
    identity_key="telegram",
    configured=configured,
    adapter="bot.channels.telegram.adapter:TelegramAdapter",
    delivery="bot.channels.telegram.delivery:open_delivery",
)
