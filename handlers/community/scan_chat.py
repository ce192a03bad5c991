"""A scanned building or place code (一楼一码): the channel hands over the scene it carried (WeChat's
``subscribe``/``SCAN`` EventKey, Telegram's ``/start`` payload) as ``Inbound.scene``; this feature
verifies it in the community the scene names (one of the 街道's), binds the resident to that building or
place (``residents.home_building`` and ``home_grid``: a report that names no place is then placed
there, see ``handlers/cases/resident_chat.py``), greets them with the community and the place, and
hands the scanned community to ``bound`` (the composition's: it remembers the resident's community and
lets the scan answer a question waiting for it, ``handlers/cases/community_question.py``). A new scan
changes the binding, in another community too; a staff member's scan binds nothing; a bad, forged or
stale code, or one of a community the deployment no longer serves, gets a plain answer and changes
nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.community.qr_config import QrSettings
from handlers.community.scenes import SECRET_KEY, Refusal, Scanned, community_code, scene_code, verify
from handlers.kernel.features import ChatContext
from handlers.kernel.token_store import shared_secret
from messages import render

log = logging.getLogger(__name__)
HOME_LENGTH = 32  # residents.home_building

# What follows a resident's scan once the home is set and the greeting said: (ctx, community, where).
Bound = Callable[[ChatContext, Any, Scanned], Awaitable[None]]


async def scene_secret(session: AsyncSession, settings: QrSettings) -> bytes:
    """The deployment's signing secret: ``OUTREACH_QR_SECRET``, else the one kept in the database."""
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode("utf-8")
    return (await shared_secret(session, SECRET_KEY)).encode("utf-8")


async def _nothing(ctx: ChatContext, community: Any, scanned: Scanned) -> None:
    return None


class ScanFeature:
    name = "scan"

    def __init__(self, settings: QrSettings, bound: Bound = _nothing) -> None:
        self.settings = settings
        self.bound = bound

    async def handle(self, ctx: ChatContext) -> bool:
        scene = ctx.message.scene
        if scene is None:
            return False
        turn = ctx.turn
        street = turn.services.street
        claimed = scene_code(scene)
        community = (street.get(claimed) if claimed else None) or turn.community
        secret = await scene_secret(turn.session, self.settings)
        found = verify(secret, scene, community, community_code(community))
        if isinstance(found, Refusal):
            log.info("a %s scan refused: %s", ctx.message.channel, found.value)  # never the scene itself
            # a code of a community the deployment does not serve is not "of" the turn's community
            name = street.name if found == Refusal.OTHER_COMMUNITY and len(street) > 1 else community.name
            ctx.reply(render(f"scan.{found.value}", community=name))
            return True
        where = found.target.label
        if ctx.actor.is_staff:
            ctx.reply(render("scan.staff", community=community.name, where=where))
            return True
        resident = ctx.actor.resident
        assert resident is not None
        # a place of a longer name is greeted but not kept (the column's size); an older home is dropped
        kept = len(where) <= HOME_LENGTH
        resident.home_building = where if kept else None
        resident.home_grid = found.target.grid if kept else None
        ctx.reply(render("scan.greeting", community=community.name, where=where))
        await self.bound(ctx, community, found)
        return True
