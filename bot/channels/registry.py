"""The one list of channels. Adding one (say DingTalk) is a package ``bot/channels/dingtalk/`` with a
``spec.py`` and one line here (and its key in ``handlers/kernel/channel_keys.py``); the settings, the server,
``broadcast --send``, audiences and the community file read the list from here. See
docs/architecture.md, "Adding a channel"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from bot.channels.console.spec import SPEC as CONSOLE
from bot.channels.spec import ChannelSpec
from bot.channels.telegram.spec import SPEC as TELEGRAM
from bot.channels.wechat.spec import SPEC as WECHAT
from bot.channels.wecom.spec import SPEC as WECOM
from handlers.kernel.channel_keys import IDENTITY_KEYS
from handlers.kernel.ports import Delivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from handlers.community.model import Community
    from handlers.kernel.channel_ports import ChannelAdapter

CHANNELS: tuple[ChannelSpec, ...] = (TELEGRAM, WECHAT, WECOM, CONSOLE)
# The functions below take ``bot.settings.Settings``, typed as its base here: Settings is built from
# this list, so the registry does not import it back.

_keys = {spec.identity_key for spec in CHANNELS if spec.identity_key is not None}
if _keys != set(IDENTITY_KEYS):  # the kernel's list of community-file keys must be this one
    raise RuntimeError(f"identity keys differ: registry {sorted(_keys)}, kernel {sorted(IDENTITY_KEYS)}")


def spec(name: str) -> ChannelSpec:
    return next(s for s in CHANNELS if s.name == name)


def configured(settings: BaseModel) -> list[ChannelSpec]:
    """The channels these settings turn on, in the registry's order."""
    return [s for s in CHANNELS if s.configured(settings)]


def configured_channels(settings: BaseModel) -> frozenset[str]:
    """The names of the channels a server with these settings runs."""
    return frozenset(s.name for s in configured(settings))


def enabled_adapters(settings: BaseModel) -> list[ChannelAdapter]:
    """The server adapters of the configured channels."""
    return [s.build_adapter(settings) for s in configured(settings) if s.adapter is not None]


async def open_delivery(
    settings: BaseModel, sessions: async_sessionmaker[AsyncSession], community: Community
) -> Delivery:
    """Every configured channel's outbox senders, for a process that delivers without serving."""
    delivery = Delivery()
    try:
        for channel in configured(settings):
            delivery.add(await channel.open_delivery(settings, sessions, community))
    except BaseException:
        await delivery.close()
        raise
    return delivery


class Directory:
    """The registry as features see it (``handlers.kernel.channel_ports.ChannelDirectory``), for these settings."""

    def __init__(self, settings: BaseModel) -> None:
        self.settings = settings

    def configured(self) -> frozenset[str]:
        return configured_channels(self.settings)

    async def open_delivery(
        self, sessions: async_sessionmaker[AsyncSession], community: Community
    ) -> Delivery:
        return await open_delivery(self.settings, sessions, community)
