"""The 街道 table: every community's figures side by side, ranked (``outreach-bot stats`` over a 街道
file without ``--community``, and a 街道 admin's 统计).

The figures are those of ``handlers/cases/stats.py`` (the same cohort, each defined there once), one
row per community, computed by a handful of queries grouped by ``cases.community_id`` over the
indexes ``ix_cases_community_created`` / ``ix_cases_community_status``, whatever the number of
communities (one pass each, never one query per community).

Ranking: by 按期处置率 (higher first), then 满意率 (higher first), then 返工率 (lower first), then the
number received (more first) and the code; a community with no figure for a rate ranks after those that
have one, so a community with no cases does not top the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases.models import OPEN_STATUSES, ActorType, Case, CaseEvent
from handlers.cases.stats import COHORT_COLUMNS, FIXED, Row, _cohort_figures, _hours, _one
from handlers.cases.stats import _medians as grouped_medians
from handlers.community.street import Street
from messages import render


@dataclass
class StreetReport:
    street: str
    timezone: ZoneInfo
    period: str
    start: datetime
    end: datetime
    now: datetime
    rows: list[Row] = field(default_factory=list)  # ranked: the best first
    total: Row = field(default_factory=lambda: Row(None, ""))

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.timezone).isoformat(timespec="seconds")

    def as_dict(self) -> dict[str, Any]:
        return {
            "street": self.street,
            "timezone": self.timezone.key,
            "period": self.period,
            "start": self.local(self.start),
            "end": self.local(self.end),
            "now": self.local(self.now),
            "by_community": [{"rank": i, **r.as_dict()} for i, r in enumerate(self.rows, 1)],
            "total": self.total.as_dict(),
        }


def _rank_key(row: Row) -> tuple[Any, ...]:
    def high_first(value: float | None) -> tuple[int, float]:
        return (1, 0.0) if value is None else (0, -value)

    def low_first(value: float | None) -> tuple[int, float]:
        return (1, 0.0) if value is None else (0, value)

    return (
        high_first(row.on_time_rate),
        high_first(row.satisfaction),
        low_first(row.rework_rate),
        -row.received,
        row.key or "",
    )


def ranked(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=_rank_key)


async def _by_community(session: AsyncSession, query: Any) -> dict[int | None, tuple[Any, ...]]:
    rows = await session.execute(query.group_by(Case.community_id))
    return {r[0]: tuple(r[1:]) for r in rows.all()}


async def _medians(session: AsyncSession, in_period: Any) -> dict[int | None, float]:
    """The median hours to close per community (numbered durations: the same SQL on both databases)."""
    dialect = session.get_bind().dialect.name
    hours = _hours(dialect, Case.resolved_at, Case.created_at)
    durations = (
        select(Case.community_id.label("k"), hours.label("h"))
        .where(in_period, Case.status.in_(FIXED))
        .subquery("durations")
    )
    numbered = select(
        durations.c.k,
        durations.c.h,
        func.row_number().over(partition_by=durations.c.k, order_by=durations.c.h).label("rn"),
        func.count().over(partition_by=durations.c.k).label("n"),
    ).subquery("numbered")
    middle = (
        select(numbered.c.k, func.avg(numbered.c.h))
        .where(numbered.c.rn * 2 >= numbered.c.n, numbered.c.rn * 2 <= numbered.c.n + 2)
        .group_by(numbered.c.k)
    )
    return {k: float(h) for k, h in (await session.execute(middle)).all()}


async def compute_street(
    session: AsyncSession,
    street: Street,
    ids: Mapping[str, int],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    period: str = "custom",
) -> StreetReport:
    """Each community's figures for the cases received in [start, end) as they stand at ``now``, ranked;
    ``ids`` are the communities' row ids by code. Cases of no community (or of one that left the
    file) count in the total only."""
    in_period = and_(Case.created_at >= start, Case.created_at < end)
    cohort = await _by_community(session, select(Case.community_id, *_cohort_figures(now)).where(in_period))
    good = CaseEvent.action == "confirmed"
    bad = and_(CaseEvent.action == "reopened", CaseEvent.actor_type == ActorType.RESIDENT)
    ratings = await _by_community(
        session,
        select(Case.community_id, _one(good), _one(bad))
        .select_from(CaseEvent)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(in_period, CaseEvent.at <= now, or_(good, bad)),
    )
    backlog = await _by_community(
        session,
        select(Case.community_id, func.count()).where(
            Case.created_at < start, Case.status.in_(OPEN_STATUSES)
        ),
    )
    medians = await _medians(session, in_period)

    report = StreetReport(street.name, ZoneInfo(street.timezone), period, start, end, now)
    rows = []
    for community in street:
        row_id = ids.get(community.code)
        row = Row(community.code, community.name, median_hours=medians.get(row_id) if row_id else None)
        if row_id is not None:
            _add(row, cohort.get(row_id), ratings.get(row_id), backlog.get(row_id))
        rows.append(row)
    report.rows = ranked(rows)
    dialect = session.get_bind().dialect.name
    overall = await grouped_medians(session, in_period, dialect, literal("total"), None)
    report.total = Row(None, render("stats.section.total"), median_hours=overall.get("total"))
    for key in {*cohort, *ratings, *backlog}:
        _add(report.total, cohort.get(key), ratings.get(key), backlog.get(key))
    return report


def _add(
    row: Row,
    cohort: tuple[Any, ...] | None,
    ratings: tuple[Any, ...] | None,
    backlog: tuple[Any, ...] | None,
) -> None:
    for name, value in zip(COHORT_COLUMNS, cohort or (0,) * len(COHORT_COLUMNS), strict=True):
        setattr(row, name, getattr(row, name) + int(value))
    good, bad = ratings or (0, 0)
    row.ratings_good += int(good)
    row.ratings_bad += int(bad)
    row.backlog += int((backlog or (0,))[0])
