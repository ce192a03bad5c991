"""What every broadcasts CLI command (``broadcast``, ``broadcasts``, ``tags``) opens first: the database
and the community, and how it prints JSON lines."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import datetime
from typing import Any

from handlers.broadcasts.config import CliSettings


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def utc_now() -> datetime:
    from storage.models import utcnow

    return utcnow()


class CliEnv:
    """Engine, sessions and community for one command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.settings: CliSettings = args.settings()  # handed in by the composition root
        self.engine: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> CliEnv:
        from handlers.community.model import load_community
        from handlers.community.store import stored_community, sync_community
        from storage.migrate import database

        db = await self._stack.enter_async_context(database(self.settings.database_url))
        self.engine, self.sessions = db.engine, db.sessions
        async with self.sessions.begin() as session:
            community = await stored_community(session)
            if community is None:  # a new database: the configured (or sample) community file
                community = load_community(self.settings.config)
                await sync_community(session, community)
        self.community = community
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()
