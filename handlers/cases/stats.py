"""Case statistics per grid, category and worker (综合评价), each figure defined once, here.

The figures follow a **cohort**: the cases received (受理) in the period [start, end) (boundaries in
the community's time zone), each counted once by where it stands at ``now``. So the states add up:

    受理 received = 办结 closed + 在办 in_hand + 待分拣 triage + 转交 referred + 合并 merged + 无效 invalid

* **受理 received**: cases created in the period.
* **办结 closed**: of those, the ones fixed now (resolved, waiting for the reporter, or confirmed). A
  case reopened (不满意, 重开) is back in hand: it counts as 在办 until it is finished again.
* **在办 in_hand**: assigned, accepted or in progress (a worker or leader has it).
* **待分拣 triage**: still new: in the admins' triage queue or waiting for the reporter's location.
* **转交 referred**: closed as not ours, referred to another body.
* **合并 merged**: closed as a duplicate, merged by staff or withdrawn by its reporter to follow the
  open case (关注).
* **无效 invalid**: closed as invalid (any other closure counts here too, so nothing is lost).
* **结案率 close_rate**: 办结 / (受理 − 转交 − 合并 − 无效): the share of the cases that were ours.
* **按期处置率 on_time_rate**: of the 办结 cases, the share resolved by ``due_at`` and never reopened.
* **返工率 rework_rate**: of the cases handed in as resolved at least once (办结 now, or reopened
  since: ``handled``), the share reopened at least once (``reworked``).
* **满意率 satisfaction**: good / (good + bad) of the reporters' ratings of these cases up to ``now``
  (满意 confirms, 不满意 reopens; auto-confirmation is no rating); ``None`` when nobody rated.
* **当前超期 overdue_now**: the cohort's open cases whose ``due_at`` has passed at ``now``.
* **backlog**: open cases received *before* the period (not in the cohort; shown apart).
* **median time to close**: wall-clock hours from ``created_at`` to ``resolved_at`` of the 办结 cases.

The states are the cases' current ones (no snapshot is kept): for a past period (``--as-of``) the
period and the overdue test move, a case's state is still today's. Cases are grouped by their current
grid, category and assignee. Every figure comes from a handful of
aggregate queries over indexed columns (cases.created_at, case_events.case_id); no case is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.cases.models import OPEN_STATUSES, ActorType, Case, CaseEvent, CaseStatus
from handlers.community.model import Community
from messages import render

Period = Literal["day", "week", "month", "quarter"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter")
Dimension = Literal["grid", "category", "worker"]
DIMENSIONS: tuple[Dimension, ...] = ("grid", "category", "worker")

FIXED = (CaseStatus.RESOLVED, CaseStatus.CONFIRMED)
IN_HAND = (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS)
OTHER = "other"


# -- period boundaries (pure) ---------------------------------------------------------------------------


def period_start(period: Period, day: date) -> date:
    """The first local day of the period containing ``day``: the day itself, the ISO week's Monday,
    the first of the month, the first of the quarter."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"unknown period {period!r}")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_bounds(
    period: Period, now: datetime, tz: ZoneInfo, as_of: date | None = None
) -> tuple[datetime, datetime]:
    """[start, end) in UTC: from the start of the period that contains today up to ``now``; with
    ``as_of``, the period that contains that local day, up to the end of it, as if asked at midnight
    (``now`` is ignored), so the same question gives the same figures whenever it is asked."""
    if as_of is None:
        day, end = now.astimezone(tz).date(), now
    else:
        day, end = as_of, local_midnight(as_of + timedelta(days=1), tz)
    return local_midnight(period_start(period, day), tz), end


# -- the report -----------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# The cohort's states, in the order they are shown; they add up to ``received``.
STATES = ("closed", "in_hand", "triage", "referred", "merged", "invalid")


@dataclass
class Row:
    key: str | None
    name: str
    received: int = 0
    closed: int = 0
    in_hand: int = 0
    triage: int = 0
    referred: int = 0
    merged: int = 0
    invalid: int = 0
    on_time: int = 0
    handled: int = 0  # handed in as resolved at least once: the base of the rework rate
    reworked: int = 0
    ratings_good: int = 0
    ratings_bad: int = 0
    overdue_now: int = 0
    backlog: int = 0
    median_hours: float | None = None

    @property
    def resolved(self) -> int:
        """The base of the on-time rate (the 办结 cases); kept under its old JSON name."""
        return self.closed

    @property
    def open_now(self) -> int:
        return self.in_hand + self.triage

    @property
    def ours(self) -> int:
        return self.received - self.referred - self.merged - self.invalid

    @property
    def close_rate(self) -> float | None:
        return _ratio(self.closed, self.ours)

    @property
    def on_time_rate(self) -> float | None:
        return _ratio(self.on_time, self.closed)

    @property
    def rework_rate(self) -> float | None:
        return _ratio(self.reworked, self.handled)

    @property
    def satisfaction(self) -> float | None:
        return _ratio(self.ratings_good, self.ratings_good + self.ratings_bad)

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "key": self.key,
            "name": self.name,
            "received": self.received,
            "closed": self.closed,
            "resolved": self.resolved,
            "on_time": self.on_time,
            "on_time_rate": rounded(self.on_time_rate, 4),
            "reworked": self.reworked,
            "rework_rate": rounded(self.rework_rate, 4),
            "ratings_good": self.ratings_good,
            "ratings_bad": self.ratings_bad,
            "satisfaction": rounded(self.satisfaction, 4),
            "open_now": self.open_now,
            "overdue_now": self.overdue_now,
            "median_hours_to_close": rounded(self.median_hours, 2),
            # added keys (the old ones above keep their names)
            "in_hand": self.in_hand,
            "triage": self.triage,
            "referred": self.referred,
            "merged": self.merged,
            "invalid": self.invalid,
            "close_rate": rounded(self.close_rate, 4),
            "handled": self.handled,
            "backlog": self.backlog,
        }


@dataclass
class Report:
    community: str
    timezone: ZoneInfo
    period: str
    start: datetime
    end: datetime
    now: datetime
    by_grid: list[Row] = field(default_factory=list)
    by_category: list[Row] = field(default_factory=list)
    by_worker: list[Row] = field(default_factory=list)
    total: Row = field(default_factory=lambda: Row(None, ""))

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.timezone).isoformat(timespec="seconds")

    def groups(self) -> list[tuple[str, list[Row]]]:
        return [("grid", self.by_grid), ("category", self.by_category), ("worker", self.by_worker)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community,
            "timezone": self.timezone.key,
            "period": self.period,
            "start": self.local(self.start),
            "end": self.local(self.end),
            "now": self.local(self.now),
            "by_grid": [r.as_dict() for r in self.by_grid],
            "by_category": [r.as_dict() for r in self.by_category],
            "by_worker": [r.as_dict() for r in self.by_worker],
            "total": self.total.as_dict(),
        }


# -- queries --------------------------------------------------------------------------------------------

GroupKey = tuple[str | None, str | None, str | None]  # grid, category, assignee
_KEYS = (Case.grid_code, Case.category_code, Case.assignee_id)
# The columns of the cohort query, in the order ``_add`` reads them.
COHORT_COLUMNS = ("received", *STATES, "on_time", "handled", "reworked", "overdue_now")


def _hours(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":  # stored as ISO text in UTC
        return (func.julianday(later) - func.julianday(earlier)) * 24.0
    return func.extract("epoch", later - earlier) / 3600.0


def _in_grids(
    query: Select[Any], grids: Sequence[str] | None, community_id: int | None = None
) -> Select[Any]:
    """The query kept to some grids (of the community ``community_id``, when given: grid codes are
    per community)."""
    if community_id is not None:
        query = query.where(Case.community_id == community_id)
    return query if grids is None else query.where(Case.grid_code.in_(list(grids)))


def _one(expr: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((expr, 1), else_=0)), 0)


def _cohort_figures(now: datetime) -> list[ColumnElement[int]]:
    """One aggregate per ``COHORT_COLUMNS`` entry: each state defined once, here."""
    fixed = Case.status.in_(FIXED)
    closed_as = Case.status == CaseStatus.CLOSED
    in_time = or_(Case.due_at.is_(None), Case.resolved_at <= Case.due_at)
    return [
        func.count(),
        _one(fixed),
        _one(Case.status.in_(IN_HAND)),
        _one(Case.status == CaseStatus.NEW),
        _one(and_(closed_as, Case.close_reason == "not_ours")),
        _one(and_(closed_as, Case.close_reason == "duplicate")),
        # any other closure (an unknown or missing reason) is invalid, so the states still add up
        _one(
            and_(
                closed_as,
                or_(Case.close_reason.is_(None), Case.close_reason.not_in(("not_ours", "duplicate"))),
            )
        ),
        _one(and_(fixed, Case.reopen_count == 0, in_time)),
        _one(or_(fixed, Case.reopen_count > 0)),
        _one(Case.reopen_count > 0),
        _one(and_(Case.status.in_(OPEN_STATUSES), Case.due_at < now)),
    ]


async def _grouped(session: AsyncSession, query: Select[Any]) -> dict[GroupKey, tuple[Any, ...]]:
    rows = await session.execute(query.group_by(*_KEYS))
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows.all()}


async def _medians(
    session: AsyncSession,
    in_period: Any,
    dialect: str,
    key: Any,
    grids: Sequence[str] | None,
    community_id: int | None = None,
) -> dict[Any, float]:
    """The median of the hours to close per ``key`` (a column, or a constant for the total), by
    numbering the durations within each group: no percentile function needed, same SQL on both."""
    hours = _hours(dialect, Case.resolved_at, Case.created_at)
    durations = _in_grids(
        select(key.label("k"), hours.label("h")).where(in_period, Case.status.in_(FIXED)),
        grids,
        community_id,
    ).subquery("durations")
    ranked = select(
        durations.c.k,
        durations.c.h,
        func.row_number().over(partition_by=durations.c.k, order_by=durations.c.h).label("rn"),
        func.count().over(partition_by=durations.c.k).label("n"),
    ).subquery("ranked")
    middle = (
        select(ranked.c.k, func.avg(ranked.c.h))
        .where(ranked.c.rn * 2 >= ranked.c.n, ranked.c.rn * 2 <= ranked.c.n + 2)
        .group_by(ranked.c.k)
    )
    return {k: float(h) for k, h in (await session.execute(middle)).all()}


async def compute(
    session: AsyncSession,
    community: Community,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    period: str = "custom",
    grids: Sequence[str] | None = None,
    community_id: int | None = None,
) -> Report:
    """The figures of the cases received in [start, end), where they stand at ``now``, per grid,
    category and worker and in total; ``grids`` limits them to those grids (a leader's view),
    ``community_id`` to that community's cases (a deployment of several: ``None`` counts all)."""
    dialect = session.get_bind().dialect.name
    in_period = and_(Case.created_at >= start, Case.created_at < end)
    cid = community_id

    cohort = await _grouped(
        session, _in_grids(select(*_KEYS, *_cohort_figures(now)).where(in_period), grids, cid)
    )

    good = CaseEvent.action == "confirmed"  # the reporter's 满意 (auto-confirmation is "auto_confirmed")
    bad = and_(CaseEvent.action == "reopened", CaseEvent.actor_type == ActorType.RESIDENT)  # 不满意
    ratings = await _grouped(
        session,
        _in_grids(
            select(*_KEYS, _one(good), _one(bad))
            .select_from(CaseEvent)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(in_period, CaseEvent.at <= now, or_(good, bad)),
            grids,
            cid,
        ),
    )

    backlog = await _grouped(
        session,
        _in_grids(
            select(*_KEYS, func.count()).where(Case.created_at < start, Case.status.in_(OPEN_STATUSES)),
            grids,
            cid,
        ),
    )

    medians = {
        "grid": await _medians(session, in_period, dialect, Case.grid_code, grids, cid),
        "category": await _medians(
            session, in_period, dialect, func.coalesce(Case.category_code, OTHER), grids, cid
        ),
        "worker": await _medians(session, in_period, dialect, Case.assignee_id, grids, cid),
        "total": await _medians(session, in_period, dialect, literal("total"), grids, cid),
    }

    return _assemble(
        community,
        period,
        start,
        end,
        now,
        grids,
        cohort=cohort,
        ratings=ratings,
        backlog=backlog,
        medians=medians,
    )


# -- assembling rows ------------------------------------------------------------------------------------


def _dimension_key(dimension: str, key: GroupKey) -> str | None:
    grid, category, worker = key
    if dimension == "grid":
        return grid
    if dimension == "category":
        return category or OTHER
    return worker


def _name(community: Community, dimension: str, key: str | None) -> str:
    if dimension == "grid":
        grid = community.grids.get(key) if key is not None else None
        return grid.name if grid else (key or render("stats.no_grid"))
    if dimension == "category":
        if key is None or key == OTHER:
            return render("category.other")
        return community.category_names.get(key, key)
    staff = community.staff.get(key) if key is not None else None
    return staff.name if staff else (key or render("stats.unassigned"))


def _configured(community: Community, dimension: str, grids: Sequence[str] | None) -> list[str]:
    """The rows shown even with no cases: the grids, the enabled categories, the grids' workers."""
    chosen = [g for g in community.grids.values() if grids is None or g.code in grids]
    if dimension == "grid":
        return [g.code for g in chosen]
    if dimension == "category":
        return [c.code for c in community.categories if c.enabled and c.code != OTHER]
    return list(dict.fromkeys(w.staff for g in chosen for w in g.workers))


def _ordered(configured: list[str], seen: Iterable[str | None]) -> list[str | None]:
    extra = sorted({k for k in seen if k is not None and k not in configured})
    tail: list[str | None] = [None] if None in set(seen) else []
    return [*configured, *extra, *tail]


def _assemble(
    community: Community,
    period: str,
    start: datetime,
    end: datetime,
    now: datetime,
    grids: Sequence[str] | None,
    *,
    cohort: dict[GroupKey, tuple[Any, ...]],
    ratings: dict[GroupKey, tuple[Any, ...]],
    backlog: dict[GroupKey, tuple[Any, ...]],
    medians: dict[str, dict[Any, float]],
) -> Report:
    report = Report(community.name, community.timezone, period, start, end, now)
    report.total = Row(None, render("stats.section.total"), median_hours=medians["total"].get("total"))
    every_key = {*cohort, *ratings, *backlog}
    for dimension, rows in zip(
        DIMENSIONS, (report.by_grid, report.by_category, report.by_worker), strict=True
    ):
        seen = [_dimension_key(dimension, k) for k in every_key]
        index: dict[str | None, Row] = {}
        for key in _ordered(_configured(community, dimension, grids), seen):
            row = Row(key, _name(community, dimension, key), median_hours=medians[dimension].get(key))
            index[key] = row
            rows.append(row)
        for key in every_key:
            _add(index[_dimension_key(dimension, key)], key, cohort, ratings, backlog)
    for key in every_key:
        _add(report.total, key, cohort, ratings, backlog)
    return report


def _add(
    row: Row,
    key: GroupKey,
    cohort: dict[GroupKey, tuple[Any, ...]],
    ratings: dict[GroupKey, tuple[Any, ...]],
    backlog: dict[GroupKey, tuple[Any, ...]],
) -> None:
    figures = cohort.get(key, (0,) * len(COHORT_COLUMNS))
    for name, value in zip(COHORT_COLUMNS, figures, strict=True):
        setattr(row, name, getattr(row, name) + int(value))
    good, bad = ratings.get(key, (0, 0))
    row.ratings_good += int(good)
    row.ratings_bad += int(bad)
    row.backlog += int(backlog.get(key, (0,))[0])
