"""The WeChat Official Account channel as the registry sees it: its settings, its key in the community
file, and where its adapter and its outbox delivery (customer-service, template and subscription
messages, and mass sends for broadcasts) live."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from bot.channels.spec import ChannelSpec


class WeChatSettings(BaseModel):
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


def configured(settings: WeChatSettings) -> bool:
    return settings.wechat_token is not None and bool(settings.wechat_app_id and settings.wechat_app_secret)


SPEC = ChannelSpec(
    name="wechat",
    settings=WeChatSettings,
    identity_key="wechat",
    configured=configured,
    adapter="bot.channels.wechat.adapter:WeChatAdapter",
    delivery="bot.channels.wechat.delivery:open_delivery",
)
