"""Drive the real conversation core as the console does, with a clock the test moves and a sender that
keeps what would have been delivered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.community.model import Community
from handlers.community.street import Street
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.inbound import Inbound
from handlers.kernel.outbox import drain
from storage.models import OutboxMessage


class Clock:
    """A clock tests can move: starts on a Monday morning in Shanghai."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)  # 09:30 Asia/Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Delivered:
    channel: str
    recipient: str
    text: str
    payload: dict[str, object]


@dataclass
class RecordingSender:
    """A stand-in for a chat platform: keeps what would have been delivered."""

    channel: str
    delivered: list[Delivered] = field(default_factory=list)

    async def send(self, message: OutboxMessage) -> None:
        self.delivered.append(
            Delivered(message.channel, message.recipient, message.text, dict(message.payload))
        )


@dataclass
class Chat:
    """Drive the real conversation core as the console does: send a message, collect what went out."""

    services: Services
    conversation: Conversation
    sender: RecordingSender
    clock: Clock

    async def send(self, who: str, text: str | None = None, **kwargs: object) -> list[Delivered]:
        await self.conversation.handle(Inbound(channel="console", sender=who, text=text, **kwargs))  # type: ignore[arg-type]
        return await self.flush()

    async def flush(self) -> list[Delivered]:
        before = len(self.sender.delivered)
        while await drain(self.services.sessions, self.sender, self.clock):
            pass
        return self.sender.delivered[before:]

    @staticmethod
    def to(messages: list[Delivered], who: str) -> list[str]:
        return [m.text for m in messages if m.recipient == who]


async def chat_in(sessions: async_sessionmaker[AsyncSession], community: Community, clock: Clock) -> Chat:
    """A console chat with the bot of ``community`` (synced into the database first)."""
    from handlers.community.store import sync_community
    from handlers.feature_set import conversation

    async with sessions.begin() as session:
        await sync_community(session, community)
    services = Services(sessions=sessions, community=community, channels=frozenset({"console"}), clock=clock)
    return Chat(services, conversation(services), RecordingSender("console"), clock)


async def street_chat_in(sessions: async_sessionmaker[AsyncSession], street: Street, clock: Clock) -> Chat:
    """A console chat with the bot of a 街道 of several communities (synced into the database first)."""
    from handlers.community.store import sync_street
    from handlers.feature_set import conversation

    async with sessions.begin() as session:
        await sync_street(session, street)
    services = Services(
        sessions=sessions,
        community=street.communities[0],
        street=street,
        channels=frozenset({"console"}),
        clock=clock,
    )
    return Chat(services, conversation(services), RecordingSender("console"), clock)
