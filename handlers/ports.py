"""The kernel's ports: what a channel must offer the kernel, and what the kernel offers a channel.

A channel (``bot/channels/*``) translates platform updates into ``Inbound`` and outbox rows into platform
calls. The server starts its ``ChannelAdapter`` with an ``AdapterContext`` (the shared services, the
conversation, and a way to wake the outbox) instead of itself, so channels never import the server, and
its ``Sender`` reports each delivery's ``DeliveryOutcome`` instead of an error text to be parsed back.
The kernel never imports ``bot/``: these protocols are the whole contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from starlette.routing import BaseRoute

    from handlers.community import Community
    from handlers.context import Services
    from handlers.conversation import Conversation
    from storage.models import OutboxMessage


class DeliveryOutcome(StrEnum):
    """What became of one delivery attempt (the value starts a failed row's ``last_error``)."""

    SENT = "sent"
    RETRY_AT = "retry_at"  # not now (rate limit, outage): the row is tried again later
    BLOCKED = "blocked"  # the person blocked the bot or left: never retried
    UNREACHABLE = "unreachable"  # no way to this person on this channel now (window closed, no template)
    UNCERTAIN = "uncertain"  # the request may or may not have reached the platform (at-most-once rows)


class OutboxKind(StrEnum):
    """What an outbox row is; the stored ``kind`` column holds the value, so no migration is needed."""

    REPLY = "reply"
    ACK = "ack"
    STATUS = "status"
    NOTIFY = "notify"
    REMINDER = "reminder"
    BROADCAST = "broadcast"
    DIGEST = "digest"
    CARD_UPDATE = "card_update"  # WeCom: a clicked card updated with its ResponseCode
    PUSH_ONLY = "push_only"  # to the person's own account, never as a passive reply to whoever asked


class Sender(Protocol):
    """Delivers one channel's outbox rows (``handlers.outbox.drain`` calls it); raises
    ``handlers.outbox.DeliveryError`` with an outcome when a row did not go out."""

    channel: str

    async def send(self, message: OutboxMessage) -> None: ...


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


@dataclass(frozen=True)
class MassResult:
    """What a mass send (one platform call for many recipients) came to; ``detail`` for the log and
    the rows' ``last_error``."""

    outcome: DeliveryOutcome
    detail: str = ""


class MassSender(Protocol):
    """A channel's mass delivery (WeChat 群发): one text to many accounts in one call, identified by
    ``batch_id`` so that repeating a call the platform already took counts as sent, not as a second
    message. SENT, RETRY_AT (try the same rows later) or UNREACHABLE (this way is closed: send them
    the ordinary way)."""

    async def send_mass(self, recipients: Sequence[str], text: str, batch_id: str) -> MassResult: ...


@dataclass
class Delivery:
    """Channels' outbox senders for a process that delivers without serving (``broadcast --send``),
    what to close when it is done, and a mass sender when a channel offers one."""

    senders: list[Sender] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    mass: MassSender | None = None

    def add(self, other: Delivery) -> None:
        self.senders.extend(other.senders)
        self.closers.extend(other.closers)
        self.mass = self.mass or other.mass

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()


class ChannelDirectory(Protocol):
    """The channels this deployment runs, as the composition root gives them to features (a CLI that
    broadcasts): which are configured, and their senders for delivering in this process."""

    def configured(self) -> frozenset[str]: ...

    async def open_delivery(
        self, sessions: async_sessionmaker[AsyncSession], community: Community
    ) -> Delivery: ...
