"""The clock of a case: its time limit in working time, the alarm times of the escalation ladder, and
local times as people read them (``handlers.kernel.clock.local_time``).

Below ``cases`` and ``feedback`` (which start and stop the clock); the scan that rings the alarms is
``handlers.cases.deadlines``, above them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.cases.models import Case
from handlers.community.classify import urgent_words
from handlers.community.model import Community
from handlers.kernel.clock import local_time as local_time  # re-exported: the case modules read it here

DEFAULT_LIMIT_HOURS = 8.0
RUNGS = (0.5, 1.0, 3.0)  # fractions of the limit: warn the worker, tell the leader, tell the admins
WAIT_FOR_RESIDENT = timedelta(minutes=30)  # then an unanswered question goes to triage


def is_urgent(text: str) -> bool:
    return any(word in text for word in urgent_words())


def limit_for(community: Community, case: Case) -> float:
    limit = community.category_limits.get(case.category_code or "", DEFAULT_LIMIT_HOURS)
    return limit * (community.config.limits.urgent_factor if case.urgent else 1.0)


def start_clock(community: Community, case: Case, start: datetime) -> None:
    """(Re)start the time limit from ``start``: dispatch, triage or reopening."""
    limit = limit_for(community, case)
    calendar = community.calendar
    case.time_limit_hours = limit
    case.clock_started_at = start
    case.due_at = calendar.add(start, limit)
    case.alarm_stage = 0
    case.next_alarm_at = calendar.add(start, limit * RUNGS[0])


def rung_time(community: Community, case: Case, stage: int) -> datetime | None:
    if stage >= len(RUNGS) or case.clock_started_at is None or case.time_limit_hours is None:
        return None
    return community.calendar.add(case.clock_started_at, case.time_limit_hours * RUNGS[stage])


def stop_clock(case: Case) -> None:
    case.next_alarm_at = None


def wait_for_resident(case: Case, now: datetime) -> None:
    case.next_alarm_at = now + WAIT_FOR_RESIDENT


def auto_confirm_at(community: Community, case: Case, now: datetime) -> None:
    case.next_alarm_at = now + timedelta(days=community.config.limits.auto_confirm_days)
