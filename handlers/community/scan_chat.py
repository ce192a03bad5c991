"""A scanned building or place code (一楼一码): the channel hands over the scene it carried (WeChat's
``subscribe``/``SCAN`` EventKey, Telegram's ``/start`` payload) as ``Inbound.scene``; this feature
verifies it, binds the resident to that building or place (``residents.home_building`` and
``home_grid`` today: a report that names no place is then placed there, see
``handlers/cases/resident_chat.py``) and greets them with it. A new scan changes the binding; a staff
member's scan binds nothing; a bad, forged or stale code gets a plain answer and changes nothing."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.community.qr_config import QrSettings
from handlers.community.scenes import SECRET_KEY, Refusal, community_code, verify
from handlers.kernel.features import ChatContext
from handlers.kernel.token_store import shared_secret
from messages import render

log = logging.getLogger(__name__)
HOME_LENGTH = 32  # residents.home_building


async def scene_secret(session: AsyncSession, settings: QrSettings) -> bytes:
    """The deployment's signing secret: ``OUTREACH_QR_SECRET``, else the one kept in the database."""
    if settings.secret is not None:
        return settings.secret.get_secret_value().encode("utf-8")
    return (await shared_secret(session, SECRET_KEY)).encode("utf-8")


class ScanFeature:
    name = "scan"

    def __init__(self, settings: QrSettings) -> None:
        self.settings = settings

    async def handle(self, ctx: ChatContext) -> bool:
        scene = ctx.message.scene
        if scene is None:
            return False
        turn = ctx.turn
        community = turn.community
        secret = await scene_secret(turn.session, self.settings)
        found = verify(secret, scene, community, community_code(community))
        if isinstance(found, Refusal):
            log.info("a %s scan refused: %s", ctx.message.channel, found.value)  # never the scene itself
            ctx.reply(render(f"scan.{found.value}", community=community.name))
            return True
        where = found.target.label
        if ctx.actor.is_staff:
            ctx.reply(render("scan.staff", community=community.name, where=where))
            return True
        resident = ctx.actor.resident
        assert resident is not None
        if len(where) <= HOME_LENGTH:  # a place of a longer name is greeted but not kept (the column's size)
            resident.home_building = where
            resident.home_grid = found.target.grid
        ctx.reply(render("scan.greeting", community=community.name, where=where))
        return True
