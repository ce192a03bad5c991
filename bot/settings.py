"""Process settings from the environment (prefix ``OUTREACH_``), typed and validated once at start-up.

Each channel declares its own settings model in its package (``bot/channels/*/spec.py``); ``Settings``
is the core settings plus every registered channel's, so the environment variables keep their names
(``OUTREACH_TELEGRAM_TOKEN`` …) and a new channel needs no edit here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.channels.registry import CHANNELS
from storage import DEFAULT_DATABASE_URL


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://…",
    )
    config: Path | None = Field(default=None, description="community YAML file; the sample one if unset")
    log_level: str = "INFO"
    # How many server processes share the work (set by `serve --workers N`): per-process rate limits
    # are divided by it so that together they stay within a platform's limits.
    serve_workers: int = Field(default=1, ge=1)
    # HTTP limits per process (bot/http_guard.py). Reverse proxies whose X-Forwarded-For is believed,
    # comma-separated addresses or networks ("127.0.0.1,10.0.0.0/8"); none by default.
    trusted_proxies: str = ""
    max_connections: int = Field(default=500, ge=1)
    max_connections_per_client: int = Field(default=64, ge=1)
    max_requests_per_client: int = Field(default=64, ge=1)
    redis_url: str | None = None  # shares the WeChat/WeCom access token through Redis instead of the database


class Settings(CoreSettings, *(channel.settings for channel in CHANNELS)):  # type: ignore[misc]
    """The core settings and every channel's (``bot.channels.registry``)."""


@cache
def get_settings() -> Settings:
    return Settings()
