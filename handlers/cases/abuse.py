"""Abuse limits: a per-resident report rate, and senders an admin has blocked (their messages are
stored, never routed)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from handlers.cases.models import Case
from handlers.kernel.context import Turn
from storage.models import Resident

WINDOW = timedelta(hours=1)


async def over_rate_limit(turn: Turn, resident: Resident) -> bool:
    since = turn.now - WINDOW
    count = await turn.session.scalar(
        select(func.count())
        .select_from(Case)
        .where(Case.reporter_id == resident.id, Case.created_at >= since)
    )
    return int(count or 0) >= turn.community.config.limits.reports_per_hour
