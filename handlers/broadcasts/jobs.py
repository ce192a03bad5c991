"""The broadcasts periodic job (``bot/jobs.py``), safe in several processes at once.

Each run: draft upcoming calendar notices (at most once a minute per process; the (key, year) unique
key makes a draft once), expand due broadcasts into outbox rows (leased, resumable), send WeChat mass
rows when enabled, tell admins the progress, and close finished broadcasts with their report. The
channels' own drain loops deliver the rows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from handlers.broadcasts import calendar, service, wechat_mass
from handlers.broadcasts.config import BroadcastSettings
from handlers.kernel.context import Services
from handlers.kernel.ports import MassSender

log = logging.getLogger(__name__)

CALENDAR_EVERY = timedelta(seconds=60)
# Per Services (by identity: Services holds unhashable parts); the entry keeps the key object alive.
_last_calendar: dict[int, tuple[Services, datetime]] = {}


class JobApp(Protocol):
    """What the job needs of the composition root's app (``bot.app.App``)."""

    services: Services
    mass: MassSender | None


async def run(
    services: Services, *, settings: BroadcastSettings | None = None, mass_client: MassSender | None = None
) -> None:
    settings = settings or services.section(BroadcastSettings)
    now = services.clock()
    last = _last_calendar.get(id(services), (services, None))[1]
    if last is None or now - last >= CALENDAR_EVERY or now < last:
        _last_calendar[id(services)] = (services, now)
        try:
            await calendar.draft_due(services, now, settings)
        except Exception:
            log.exception("outreach calendar drafting failed")
    for broadcast_id in await service.due_ids(services.sessions, now):
        await service.expand(
            services.sessions,
            broadcast_id,
            channels=services.channels,
            community=services.community.name,
            clock=services.clock,
            settings=settings,
        )
    if mass_client is not None:
        while await wechat_mass.drain(services.sessions, mass_client, services.clock, settings=settings):
            pass
    elif "wechat" in services.channels:
        await wechat_mass.fall_back(services.sessions, services.clock())
    every = timedelta(seconds=settings.progress_seconds)
    for broadcast_id in await service.sending_ids(services.sessions):
        await service.send_progress(services.sessions, broadcast_id, services.clock(), every)
        await service.finish_if_done(services.sessions, broadcast_id, services.clock())


async def run_job(app: JobApp) -> None:
    """The server's periodic job: mass sends go through the WeChat channel's mass sender when the
    channel runs here and they are enabled (``OUTREACH_BROADCAST_WECHAT_MASS``)."""
    settings = app.services.section(BroadcastSettings)
    mass = app.mass if settings.wechat_mass else None
    await run(app.services, settings=settings, mass_client=mass)
