"""The broadcasts periodic job (``bot/jobs.py``), safe in several processes at once.

Each run: draft upcoming calendar notices (at most once a minute per process; the (key, year) unique
key makes a draft once), expand due broadcasts into outbox rows (leased, resumable), send WeChat mass
rows when enabled, tell admins the progress, and close finished broadcasts with their report. The
channels' own drain loops deliver the rows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from handlers.broadcasts import calendar, service, wechat_mass
from handlers.broadcasts.config import BroadcastSettings, get_broadcast_settings
from handlers.context import Services

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CALENDAR_EVERY = timedelta(seconds=60)
# Per Services (by identity: Services holds unhashable parts); the entry keeps the key object alive.
_last_calendar: dict[int, tuple[Services, datetime]] = {}
_mass_clients: dict[int, tuple[Services, Any]] = {}


async def run(
    services: Services, *, settings: BroadcastSettings | None = None, mass_client: Any = None
) -> None:
    settings = settings or get_broadcast_settings()
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
        while await wechat_mass.drain(services.sessions, mass_client, services.clock):
            pass
    elif "wechat" in services.channels:
        await wechat_mass.fall_back(services.sessions, services.clock())
    every = timedelta(seconds=settings.progress_seconds)
    for broadcast_id in await service.sending_ids(services.sessions):
        await service.send_progress(services.sessions, broadcast_id, services.clock(), every)
        await service.finish_if_done(services.sessions, broadcast_id, services.clock())


def _mass_client(app: App) -> Any:
    """The WeChat client for mass sends, when enabled and the Official Account is configured."""
    settings = get_broadcast_settings()
    if not settings.wechat_mass:
        return None
    if id(app.services) in _mass_clients:
        return _mass_clients[id(app.services)][1]
    from bot.channels.wechat.client import DatabaseTokenStore, RedisTokenStore, WeChatClient
    from bot.settings import get_settings

    s = get_settings()
    client = None
    if s.wechat_app_id and s.wechat_app_secret and "wechat" in app.services.channels:
        store: Any = (
            RedisTokenStore(s.redis_url) if s.redis_url else DatabaseTokenStore(app.services.sessions)
        )
        client = WeChatClient(
            s.wechat_app_id, s.wechat_app_secret.get_secret_value(), s.wechat_api_url, store
        )
    _mass_clients[id(app.services)] = (app.services, client)
    return client


async def run_job(app: App) -> None:
    await run(app.services, mass_client=_mass_client(app))
