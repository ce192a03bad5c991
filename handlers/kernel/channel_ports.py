"""The ports between the kernel and a channel adapter (``handlers/kernel/ports.py`` holds the ones the outbox
and the features need): what a channel run by the server offers, what the server hands it at start,
and the channels as features see them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from starlette.routing import BaseRoute

    from handlers.kernel.community_port import CommunityPort
    from handlers.kernel.context import Services
    from handlers.kernel.conversation import Conversation
    from handlers.kernel.ports import Delivery, Sender


class AdapterContext(Protocol):
    """What a running channel adapter gets from the server: the shared services and conversation, and
    a way to ask the outbox drain loops to look now (after a turn queued messages)."""

    @property
    def services(self) -> Services: ...

    @property
    def conversation(self) -> Conversation: ...

    def wake(self, channel: str) -> None: ...

    def wake_all(self) -> None: ...


class ChannelAdapter(Protocol):
    """A chat platform served by ``outreach-bot serve``: its HTTP routes, its outbox senders, and what
    it must do at start (given the context) and stop."""

    name: str

    def routes(self) -> Sequence[BaseRoute]: ...

    def senders(self) -> Sequence[Sender]: ...

    async def start(self, context: AdapterContext) -> None: ...

    async def stop(self) -> None: ...


class ChannelDirectory(Protocol):
    """The channels this deployment runs, as the composition root gives them to features (a CLI that
    broadcasts): which are configured, and their senders for delivering in this process."""

    def configured(self) -> frozenset[str]: ...

    async def open_delivery(
        self, sessions: async_sessionmaker[AsyncSession], community: CommunityPort
    ) -> Delivery: ...
