"""Case statistics (placeholder until the statistics module lands)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.community import Community
from messages import render
from storage.models import OPEN_STATUSES, Case


async def chat_summary(session: AsyncSession, community: Community, now: datetime) -> str:
    open_count = await session.scalar(
        select(func.count()).select_from(Case).where(Case.status.in_(OPEN_STATUSES))
    )
    overdue = await session.scalar(
        select(func.count()).select_from(Case).where(Case.status.in_(OPEN_STATUSES), Case.due_at <= now)
    )
    return render("stats.chat_summary", community=community.name, open=open_count or 0, overdue=overdue or 0)
