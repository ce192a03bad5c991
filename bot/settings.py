"""Process settings from the environment (prefix ``OUTREACH_``), typed and validated once at start-up."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///outreach.db"


class Settings(BaseSettings):
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

    # Channels (used by the Telegram and WeChat adapters).
    telegram_token: SecretStr | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    wechat_token: SecretStr | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_api_url: str = "https://api.weixin.qq.com"
    # With an AES key, only encrypted callbacks are accepted (安全模式); plaintext ones as well only when
    # this is set (兼容模式, during a switch-over; logged as a warning at start-up).
    wechat_compat_mode: bool = False
    wechat_account_id: str | None = None  # the account's original id (gh_…): callbacks must be for it
    # WeChat delivery outside the 48-hour window, per outbox kind ("ack", "status", "notify", "reminder",
    # "broadcast", …) → template id, as JSON: OUTREACH_WECHAT_TEMPLATES='{"status": "TPL_ID"}'.
    wechat_templates: dict[str, str] = Field(default_factory=dict)
    wechat_subscribe_templates: dict[str, str] = Field(default_factory=dict)  # 订阅通知 (bizsend)
    redis_url: str | None = None  # shares the WeChat access token through Redis instead of the database
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"

    @field_validator("telegram_api_url")
    @classmethod
    def _bot_path(cls, value: str) -> str:
        # python-telegram-bot appends the token straight to this base, so it must end in /bot;
        # accept the server's address as people write it (https://host, https://host/) too.
        value = value.rstrip("/")
        return value if value.endswith("/bot") else value + "/bot"


@cache
def get_settings() -> Settings:
    return Settings()
