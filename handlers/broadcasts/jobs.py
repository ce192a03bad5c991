"""The broadcasts periodic job (``bot/jobs.py``), safe in several processes at once.

Each run: draft upcoming calendar notices (at most once a minute per server, as its
``CalendarThrottle`` allows; the (key, year) unique key makes a draft once), expand due broadcasts
into outbox rows (leased, resumable), send WeChat mass rows when enabled, tell admins the progress,
and close finished broadcasts with their report. The channels' own drain loops deliver the rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from handlers.broadcasts import calendar, expansion, service, wechat_mass
from handlers.broadcasts.config import BroadcastSettings
from handlers.kernel.context import Services
from handlers.kernel.ports import MassSender

log = logging.getLogger(__name__)

CALENDAR_EVERY = timedelta(seconds=60)


@dataclass
class CalendarThrottle:
    """When calendar drafts were last made, owned by what runs the job as long as the server lives
    (``BroadcastsJob``): drafting reads the calendar file and the database, once a minute is enough."""

    last: datetime | None = None

    def due(self, now: datetime) -> bool:
        """Whether to draft now (and, if so, count this as the last time). A clock set back drafts."""
        if self.last is None or now - self.last >= CALENDAR_EVERY or now < self.last:
            self.last = now
            return True
        return False


class JobApp(Protocol):
    """What the job needs of the composition root's app (``bot.app.App``)."""

    services: Services
    mass: MassSender | None


async def run(
    services: Services,
    *,
    settings: BroadcastSettings | None = None,
    mass_client: MassSender | None = None,
    calendar_throttle: CalendarThrottle | None = None,
) -> None:
    """One pass of the job; without ``calendar_throttle`` (a one-off run) calendar drafts are made now."""
    settings = settings or services.section(BroadcastSettings)
    now = services.clock()
    if calendar_throttle is None or calendar_throttle.due(now):
        try:
            await calendar.draft_due(services, now, settings)
        except Exception:
            log.exception("outreach calendar drafting failed")
    for broadcast_id in await expansion.due_ids(services.sessions, now):
        await expansion.expand(
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


async def run_job(app: JobApp, calendar_throttle: CalendarThrottle | None = None) -> None:
    """The periodic job: mass sends go through the WeChat channel's mass sender when the channel runs
    here and they are enabled (``OUTREACH_BROADCAST_WECHAT_MASS``)."""
    settings = app.services.section(BroadcastSettings)
    mass = app.mass if settings.wechat_mass else None
    await run(app.services, settings=settings, mass_client=mass, calendar_throttle=calendar_throttle)


class BroadcastsJob:
    """The job as a server runs it: made once per server (``bot/jobs.py``), it holds the server's
    calendar throttle, so the state lives exactly as long as the server and no global keeps it."""

    def __init__(self) -> None:
        self.calendar = CalendarThrottle()

    async def __call__(self, app: JobApp) -> None:
        await run_job(app, self.calendar)
