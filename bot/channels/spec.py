"""What a channel declares to the registry (``bot/channels/registry.py``): one ``ChannelSpec`` in its
package's ``spec.py``. The spec is read at every start-up, so it names its adapter and its delivery as
``"module:attribute"`` and they are imported only when the channel runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from handlers.kernel.ports import Delivery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from handlers.community.model import Community
    from handlers.kernel.channel_ports import ChannelAdapter


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ChannelSpec:
    name: str  # the channel's name in every table (identities, outbox rows)
    settings: type[BaseModel]  # its OUTREACH_* settings, mixed into bot.settings.Settings
    identity_key: str | None  # its key for a staff account in the community file (handlers/kernel/channel_keys.py)
    configured: Callable[[Any], bool]  # whether the settings turn it on (it is then served)
    adapter: str | None = None  # "module:Class", built with the settings by the server
    delivery: str | None = None  # "module:function(settings, sessions, community) -> Delivery"

    def build_adapter(self, settings: BaseModel) -> ChannelAdapter:
        assert self.adapter is not None, f"{self.name} has no server adapter"
        adapter: ChannelAdapter = _load(self.adapter)(settings)
        return adapter

    async def open_delivery(
        self, settings: BaseModel, sessions: async_sessionmaker[AsyncSession], community: Community
    ) -> Delivery:
        if self.delivery is None:
            return Delivery()
        opened: Delivery = await _load(self.delivery)(settings, sessions, community)
        return opened
