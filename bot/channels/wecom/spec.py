"""The WeCom (企业微信) channel for staff as the registry sees it: its settings, its key in the community
file, and where its adapter and its outbox delivery live."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from bot.channels.spec import ChannelSpec


class WeComSettings(BaseModel):
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"


def configured(settings: WeComSettings) -> bool:
    return bool(
        settings.wecom_corp_id
        and settings.wecom_agent_id is not None
        and settings.wecom_secret
        and settings.wecom_token
        and settings.wecom_aes_key
    )


SPEC = ChannelSpec(
    name="wecom",
    settings=WeComSettings,
    identity_key="wecom",
    configured=configured,
    adapter="bot.channels.wecom.adapter:WeComAdapter",
    delivery="bot.channels.wecom.delivery:open_delivery",
)
