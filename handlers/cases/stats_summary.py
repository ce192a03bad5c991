"""The chat's 统计 (/stats): this month's figures in a few lines, and how a figure is written (a rate,
hours, a day). The figures themselves are defined and computed in ``handlers/cases/stats.py``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases.stats import Row, compute, period_bounds
from handlers.cases.street_stats import compute_street
from handlers.community.model import Community
from handlers.community.street import Street
from messages import render


def percent(value: float | None) -> str:
    return render("stats.none") if value is None else f"{value * 100:.1f}%"


def hours_text(value: float | None) -> str:
    return render("stats.none") if value is None else render("stats.hours", value=f"{value:.1f}")


def local_date(moment: datetime, tz: ZoneInfo) -> str:
    day = moment.astimezone(tz)
    return render("stats.date", month=day.month, day=day.day)


def leader_grids(community: Community, staff_id: str) -> list[str]:
    """The grids a leader (网格长) leads: their 统计 covers these only."""
    return [g.code for g in community.config.grids if g.leader == staff_id]


def summary_figures(row: Row) -> dict[str, Any]:
    """The figures the chat's 统计 shows, by template field: the same as ``outreach-bot stats``'s
    total row (both come from ``compute``)."""
    return {
        "received": row.received,
        "closed": row.closed,
        "in_hand": row.in_hand,
        "triage": row.triage,
        "referred": row.referred,
        "merged": row.merged,
        "invalid": row.invalid,
        "close_rate": percent(row.close_rate),
        "on_time": percent(row.on_time_rate),
        "rework": percent(row.rework_rate),
        "satisfaction": percent(row.satisfaction),
        "median": hours_text(row.median_hours),
        "overdue": row.overdue_now,
        "backlog": row.backlog,
    }


async def chat_summary(
    session: AsyncSession,
    community: Community,
    now: datetime,
    grids: list[str] | None = None,
    community_id: int | None = None,
) -> str:
    """统计 / /stats: this month so far in a few lines, for the whole community (admins) or for some
    grids (a leader's); the grids with overdue cases are listed. ``community_id`` keeps the figures to
    that community's cases (a deployment of several)."""
    start, end = period_bounds("month", now, community.timezone)
    report = await compute(
        session, community, start, end, now, period="month", grids=grids, community_id=community_id
    )
    scope = ""
    if grids is not None:
        names = [community.grids[g].name for g in grids if g in community.grids]
        scope = render("stats.chat_scope", grids="、".join(names) or "-")
    lines = [
        render(
            "stats.chat_summary",
            community=community.name,
            scope=scope,
            period=render("stats.period.month"),
            start=local_date(start, community.timezone),
            **summary_figures(report.total),
        )
    ]
    lines += [
        render("stats.chat_overdue_line", name=row.name, overdue=row.overdue_now)
        for row in report.by_grid
        if row.overdue_now
    ]
    return "\n".join(lines)


async def street_summary(session: AsyncSession, street: Street, ids: Mapping[str, int], now: datetime) -> str:
    """A 街道 admin's 统计: this month's communities ranked (the 街道 table in a few lines each)."""
    tz = ZoneInfo(street.timezone)
    start, end = period_bounds("month", now, tz)
    report = await compute_street(session, street, ids, start, end, now, period="month")
    lines = [
        render(
            "stats.street_chat_title",
            street=street.name,
            period=render("stats.period.month"),
            start=local_date(start, tz),
        )
    ]
    for rank, row in enumerate(report.rows, 1):
        lines.append(
            render(
                "stats.street_chat_line",
                rank=rank,
                name=row.name,
                on_time=percent(row.on_time_rate),
                satisfaction=percent(row.satisfaction),
                rework=percent(row.rework_rate),
                received=row.received,
                overdue=row.overdue_now,
            )
        )
    total = report.total
    lines.append(
        render(
            "stats.street_chat_total",
            received=total.received,
            closed=total.closed,
            on_time=percent(total.on_time_rate),
            satisfaction=percent(total.satisfaction),
            rework=percent(total.rework_rate),
        )
    )
    return "\n".join(lines)
