"""Working time: time limits (处置时限) count working hours only, in the community's time zone,
skipping weekends and public holidays and counting make-up working days (调休)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from handlers.kernel.yaml_text import load_yaml

DEFAULT_HOURS = ("08:30-12:00", "13:30-17:30")
MAX_DAYS = 3660  # a limit that never ends is a configuration error, not a reason to loop forever


class WorkTimeError(ValueError):
    pass


def parse_period(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise WorkTimeError(text) from None
    if end <= start:
        raise WorkTimeError(text)
    return start, end


@cache
def national_days() -> tuple[frozenset[date], frozenset[date]]:
    data = load_yaml(resources.files("handlers").joinpath("data", "holidays_cn.yaml").read_text("utf-8"))
    holidays: set[date] = set()
    workdays: set[date] = set()
    for year in data.values():
        holidays |= set(year.get("holidays") or ())
        workdays |= set(year.get("workdays") or ())
    return frozenset(holidays), frozenset(workdays)


@dataclass(frozen=True)
class WorkCalendar:
    zone: ZoneInfo
    periods: tuple[tuple[time, time], ...]
    weekdays: frozenset[int]  # ISO: Monday 1 … Sunday 7
    holidays: frozenset[date]
    workdays: frozenset[date]  # make-up working days that fall on a weekend

    @classmethod
    def build(
        cls,
        zone: ZoneInfo,
        hours: Sequence[str] = DEFAULT_HOURS,
        weekdays: Iterable[int] = (1, 2, 3, 4, 5),
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        national: bool = True,
    ) -> WorkCalendar:
        periods = tuple(sorted(parse_period(h) for h in hours))
        if not periods:
            raise WorkTimeError("no working hours")
        base_holidays, base_workdays = national_days() if national else (frozenset(), frozenset())
        return cls(
            zone=zone,
            periods=periods,
            weekdays=frozenset(weekdays),
            holidays=base_holidays | frozenset(holidays),
            workdays=(base_workdays | frozenset(workdays)) - frozenset(holidays),
        )

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def hours_per_day(self) -> float:
        return sum(
            (datetime.combine(date.min, end) - datetime.combine(date.min, start)).total_seconds() / 3600
            for start, end in self.periods
        )

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of working time after ``start`` (an aware datetime); returned in UTC."""
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.zone)
        day = local.date()
        for _ in range(MAX_DAYS):
            if self.is_working_day(day):
                for period_start, period_end in self.periods:
                    begin = datetime.combine(day, period_start, self.zone)
                    end = datetime.combine(day, period_end, self.zone)
                    begin = max(begin, local)
                    if begin >= end:
                        continue
                    available = end - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time.min, self.zone)
        raise WorkTimeError("time limit does not fit in ten years of working days")

    def between(self, start: datetime, end: datetime) -> float:
        """Working hours between two moments (0 when end is before start)."""
        if end <= start:
            return 0.0
        total = timedelta()
        local_start, local_end = start.astimezone(self.zone), end.astimezone(self.zone)
        day = local_start.date()
        while day <= local_end.date():
            if self.is_working_day(day):
                for period_start, period_end in self.periods:
                    begin = max(datetime.combine(day, period_start, self.zone), local_start)
                    finish = min(datetime.combine(day, period_end, self.zone), local_end)
                    if finish > begin:
                        total += finish - begin
            day += timedelta(days=1)
        return total.total_seconds() / 3600
