"""Composition root: settings → engine → schema → community → the services every channel shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from handlers.community.model import Community, load_community
from handlers.community.store import stored_community, sync_community
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


async def load_into(engine: AsyncEngine, path: Path | None) -> Community:
    """Validate a community file (the sample one when ``path`` is None) and sync it into the database."""
    community = load_community(path)
    async with session_factory(engine).begin() as session:
        await sync_community(session, community)
    return community


async def build_app(settings: Settings, channels: frozenset[str], *, config: Path | None = None) -> App:
    """Migrate the database, make sure a community is loaded, and wire the services."""
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        community = await stored_community(session)
    if community is None or config is not None:
        community = await load_into(engine, config or settings.config)
    services = Services(
        sessions=sessions, community=community, channels=channels, settings=settings.sections()
    )
    return App(engine=engine, services=services, conversation=conversation(services))
