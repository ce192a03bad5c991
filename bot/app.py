"""Composition root: settings → engine → schema → the 街道 (its communities) → the services every
channel shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from handlers.community.store import stored_street, sync_street
from handlers.community.street import Street, load_street
from handlers.feature_set import conversation
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.ports import MassSender
from storage.database import create_engine, session_factory
from storage.migrate import upgrade


@dataclass
class App:
    engine: AsyncEngine
    services: Services
    conversation: Conversation
    mass: MassSender | None = None  # a channel's mass delivery (WeChat 群发), set by the server at start

    async def close(self) -> None:
        await self.engine.dispose()


async def load_into(engine: AsyncEngine, path: Path | None) -> Street:
    """Validate a 街道 file or a community file (the sample community when ``path`` is None) and sync
    every community into the database."""
    street = load_street(path)
    async with session_factory(engine).begin() as session:
        await sync_street(session, street)
    return street


async def build_app(settings: Settings, channels: frozenset[str], *, config: Path | None = None) -> App:
    """Migrate the database, make sure a community is loaded, and wire the services."""
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        street = await stored_street(session)
    if street is None or config is not None:
        street = await load_into(engine, config or settings.config)
    services = Services(
        sessions=sessions,
        community=street.communities[0],
        street=street,
        channels=channels,
        settings=settings.sections(),
    )
    return App(engine=engine, services=services, conversation=conversation(services))
