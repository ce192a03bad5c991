"""The kernel's ports for delivery: what a channel's sender reports and what outbox rows are.

A channel (``bot/channels/*``) translates platform updates into ``Inbound`` and outbox rows into platform
calls. Its ``Sender`` reports each delivery's ``DeliveryOutcome`` instead of an error text to be parsed
back; a ``MassSender`` is a channel's delivery of one text to many. ``handlers/kernel/channel_ports.py`` holds
the adapter's side (``ChannelAdapter``, the ``AdapterContext`` the server hands it). The kernel never
imports ``bot/``: these protocols are the whole contract. Kept free of kernel imports (the outbox
imports it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
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
    """Delivers one channel's outbox rows (``handlers.kernel.outbox.drain`` calls it); raises
    ``handlers.kernel.outbox.DeliveryError`` with an outcome when a row did not go out."""

    channel: str

    async def send(self, message: OutboxMessage) -> None: ...


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
