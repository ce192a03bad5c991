"""The National Immunization Program schedule (pure: no database, no clock).

A schedule version is a data file, ``handlers/data/nip_schedule_*.yaml``; the version in force on a
date is the newest whose ``effective_from`` is on or before it. ``plan_child`` computes a child's doses
from the birth date, the doses recorded and a reference date:

* ``due``: the date the dose becomes due given what is recorded: the minimum age, the minimum interval
  from the previous dose of the series (its recorded date, or its own due date while it is missing),
  and the 28-day rule between injectable live vaccines not given the same day. A dose recorded late
  moves the next doses of its series (catch-up, 补种); the course is never restarted.
* ``status``: done (recorded), upcoming (before ``due``), due (from ``due`` for a month, or until the
  recommended completion age if that comes first), overdue (after that), expired (no catch-up any
  more at the child's age: BCG from 4 years, everything from 18).
* ``earliest``: for a missing dose, the first date it can be given counting from the reference date
  (the catch-up plan: missing doses one after another at their minimum intervals).
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Any

from handlers.kernel.yaml_text import load_yaml

DATA_PACKAGE = "handlers"
SCHEDULE_GLOB = re.compile(r"^nip_schedule_.+\.yaml$")
DUE_WINDOW_MONTHS = 1  # "N月龄" is the month from N to N+1 months: due then, overdue after it [D]


class ScheduleError(ValueError):
    """A schedule data file is inconsistent."""


class Status(enum.StrEnum):
    DONE = "done"
    OVERDUE = "overdue"
    DUE = "due"
    UPCOMING = "upcoming"
    EXPIRED = "expired"  # missing, but past the age of catch-up: the clinic decides (not reminded)


def add_months(day: date, months: int) -> date:
    """Same day-of-month ``months`` calendar months later (满N月龄); the month's last day if shorter."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class DoseRule:
    code: str
    name_zh: str
    dose: int
    series: str
    series_dose: int
    age_months: int
    age_days: int = 0
    min_interval_days: int | None = None
    max_interval_days: int | None = None
    complete_before_months: int | None = None
    complete_before_days: int | None = None
    catch_up_until_months: int | None = None
    live_injectable: bool = False
    option_group: str | None = None
    default_option: bool = False
    sex: str | None = None
    source: tuple[str, ...] = ()
    note: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.code, self.dose)

    def min_age_date(self, birth: date) -> date:
        return add_months(birth, self.age_months) + timedelta(days=self.age_days)

    def complete_before(self, birth: date) -> date | None:
        if self.complete_before_days is not None:
            return birth + timedelta(days=self.complete_before_days)
        if self.complete_before_months is not None:
            return add_months(birth, self.complete_before_months)
        return None


@dataclass(frozen=True)
class Schedule:
    id: str
    title: str
    document: str
    effective_from: date
    supersedes: str | None
    verified: bool
    rules: tuple[DoseRule, ...]
    sources: Mapping[str, str]
    source: tuple[str, ...]
    catch_up_max_months: int = 216
    live_gap_days: int = 28

    def rule(self, code: str, dose: int) -> DoseRule | None:
        return next((r for r in self.rules if r.code == code and r.dose == dose), None)

    def codes(self) -> list[str]:
        return list(dict.fromkeys(r.code for r in self.rules))

    def single_dose(self, code: str) -> bool:
        return sum(1 for r in self.rules if r.code == code) <= 1

    def default_option(self, group: str) -> str:
        for r in self.rules:
            if r.option_group == group and r.default_option:
                return r.code
        return next(r.code for r in self.rules if r.option_group == group)


def _rule(raw: Mapping[str, Any], where: str) -> DoseRule:
    allowed = {
        "code",
        "name_zh",
        "dose",
        "series",
        "series_dose",
        "age_months",
        "age_days",
        "min_interval_days",
        "max_interval_days",
        "complete_before_months",
        "complete_before_days",
        "catch_up_until_months",
        "live_injectable",
        "option_group",
        "default",
        "sex",
        "source",
        "note",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise ScheduleError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        return DoseRule(
            code=str(raw["code"]),
            name_zh=str(raw["name_zh"]),
            dose=int(raw["dose"]),
            series=str(raw.get("series") or raw["code"]),
            series_dose=int(raw.get("series_dose") or raw["dose"]),
            age_months=int(raw["age_months"]),
            age_days=int(raw.get("age_days") or 0),
            min_interval_days=raw.get("min_interval_days"),
            max_interval_days=raw.get("max_interval_days"),
            complete_before_months=raw.get("complete_before_months"),
            complete_before_days=raw.get("complete_before_days"),
            catch_up_until_months=raw.get("catch_up_until_months"),
            live_injectable=bool(raw.get("live_injectable", False)),
            option_group=raw.get("option_group"),
            default_option=bool(raw.get("default", False)),
            sex=raw.get("sex"),
            source=tuple(str(s) for s in raw.get("source") or ()),
            note=raw.get("note"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScheduleError(f"{where}: {exc}") from None


def parse_schedule(data: Mapping[str, Any], name: str = "<schedule>") -> Schedule:
    version = data.get("version") or {}
    sources = {str(k): str(v) for k, v in (data.get("sources") or {}).items()}
    rules = tuple(_rule(r, f"{name}: doses[{i}]") for i, r in enumerate(data.get("doses") or ()))
    if not rules:
        raise ScheduleError(f"{name}: no doses")
    seen: set[tuple[str, int]] = set()
    for i, r in enumerate(rules):
        if r.key in seen:
            raise ScheduleError(f"{name}: doses[{i}]: {r.code} dose {r.dose} twice")
        seen.add(r.key)
        if not r.source:
            raise ScheduleError(f"{name}: doses[{i}]: no source")
        missing = [s for s in r.source if s not in sources]
        if missing:
            raise ScheduleError(f"{name}: doses[{i}]: sources {missing} not listed under sources")
    catch_up = data.get("catch_up") or {}
    effective = version.get("effective_from")
    if not isinstance(effective, date):
        raise ScheduleError(f"{name}: version.effective_from must be a date")
    return Schedule(
        id=str(version["id"]),
        title=str(version.get("title_zh", "")),
        document=str(version.get("document", "")),
        effective_from=effective,
        supersedes=version.get("supersedes"),
        verified=bool(version.get("verified_against_official_text", False)),
        rules=rules,
        sources=sources,
        source=tuple(str(s) for s in version.get("source") or ()),
        catch_up_max_months=int(catch_up.get("max_age_months", 216)),
        live_gap_days=int(catch_up.get("live_injectable_gap_days", 28)),
    )


@cache
def load_schedules() -> dict[str, Schedule]:
    """Every schedule version in handlers/data, by id, oldest first."""
    folder = resources.files(DATA_PACKAGE).joinpath("data")
    found: list[Schedule] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if SCHEDULE_GLOB.match(entry.name):
            found.append(parse_schedule(load_yaml(entry.read_text(encoding="utf-8")), entry.name))
    found.sort(key=lambda s: s.effective_from)
    return {s.id: s for s in found}


def schedule_for(day: date, version: str | None = None) -> Schedule:
    """The named version, or the one in force on ``day``."""
    schedules = load_schedules()
    if version is not None:
        try:
            return schedules[version]
        except KeyError:
            raise ScheduleError(f"unknown schedule version {version!r}") from None
    in_force = [s for s in schedules.values() if s.effective_from <= day]
    return in_force[-1] if in_force else next(iter(schedules.values()))


@dataclass(frozen=True)
class Given:
    code: str
    dose: int
    on: date


@dataclass(frozen=True)
class DoseStatus:
    rule: DoseRule
    due: date
    status: Status
    given_on: date | None
    earliest: date | None  # missing doses: first date it can be given, counting from the reference date
    overdue_from: date
    complete_before: date | None
    expires: date  # no catch-up from this date on
    catch_up: bool  # 补种: late, or due only after the recommended completion age

    @property
    def code(self) -> str:
        return self.rule.code

    @property
    def dose(self) -> int:
        return self.rule.dose

    @property
    def done(self) -> bool:
        return self.status == Status.DONE

    def as_dict(self) -> dict[str, Any]:
        def iso(d: date | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "vaccine": self.rule.code,
            "dose": self.rule.dose,
            "name": self.rule.name_zh,
            "due": self.due.isoformat(),
            # The CLI contract knows four statuses; a dose past the catch-up age is overdue and expired.
            "status": Status.OVERDUE.value if self.status == Status.EXPIRED else self.status.value,
            "expired": self.status == Status.EXPIRED,
            "given": iso(self.given_on),
            "earliest": iso(self.earliest),
            "complete_before": iso(self.complete_before),
            "catch_up": self.catch_up,
        }


def _live_adjust(day: date, given: Sequence[date], planned: Sequence[date], gap: int) -> date:
    """Move ``day`` (never earlier) until it keeps the live-vaccine gap: >= ``gap`` days after every
    live injectable already given (it was not given with them), and either the same day as or >= ``gap``
    days away from every live injectable planned before it."""
    for _ in range(64):
        moved = day
        for other in given:
            if moved < other + timedelta(days=gap):
                moved = other + timedelta(days=gap)
        for other in planned:
            if moved != other and abs((moved - other).days) < gap:
                moved = other if moved < other else other + timedelta(days=gap)
        if moved == day:
            return day
        day = moved
    return day


def _chosen_options(schedule: Schedule, given: Mapping[tuple[str, int], date]) -> dict[str, str]:
    """Per option group, the product of the most recently recorded dose (else the default)."""
    latest: dict[str, tuple[date, str]] = {}
    for rule in schedule.rules:
        on = given.get(rule.key)
        if rule.option_group and on is not None:
            current = latest.get(rule.option_group)
            if current is None or on >= current[0]:
                latest[rule.option_group] = (on, rule.code)
    groups = {r.option_group for r in schedule.rules if r.option_group}
    return {g: latest[g][1] if g in latest else schedule.default_option(g) for g in groups}


def _rules_for(
    schedule: Schedule, given_on: dict[tuple[str, int], date], birth: date, sex: str | None
) -> list[DoseRule]:
    """The rules that apply to this child (those given, and those of its sex and chosen products), by
    minimum age, then schedule order."""
    chosen = _chosen_options(schedule, given_on)
    rules = [
        r
        for r in schedule.rules
        if r.key in given_on
        or ((r.sex is None or r.sex == sex) and (r.option_group is None or chosen[r.option_group] == r.code))
    ]
    order = {r.key: i for i, r in enumerate(schedule.rules)}
    rules.sort(key=lambda r: (r.min_age_date(birth), order[r.key]))
    return rules


def _due_and_floor(
    rule: DoseRule, birth: date, as_of: date, prev: tuple[date, date] | None
) -> tuple[date, date]:
    """The dose's due date and the earliest it may be given, after the previous dose of its series."""
    base = rule.min_age_date(birth)
    due = base
    earliest_floor = max(base, as_of)
    if prev is not None and rule.min_interval_days is not None:
        due = max(due, prev[0] + timedelta(days=rule.min_interval_days))
        earliest_floor = max(earliest_floor, prev[1] + timedelta(days=rule.min_interval_days))
    elif prev is not None:
        earliest_floor = max(earliest_floor, prev[1])
    return due, earliest_floor


def _expires(schedule: Schedule, rule: DoseRule, birth: date) -> date:
    until = rule.catch_up_until_months or schedule.catch_up_max_months
    return add_months(birth, min(until, schedule.catch_up_max_months))


def _overdue_from(due: date, complete_before: date | None) -> date:
    window_end = add_months(due, DUE_WINDOW_MONTHS)
    if complete_before is None:
        return window_end
    return max(min(window_end, complete_before), due + timedelta(days=1))


def _catch_up(status: Status, due: date, complete_before: date | None) -> bool:
    """A dose given late: overdue, or due only after the age it should be complete by."""
    if status in (Status.EXPIRED, Status.DONE):
        return False
    return status == Status.OVERDUE or (complete_before is not None and due >= complete_before)


def _open_status(as_of: date, due: date, overdue_from: date) -> Status:
    if as_of < due:
        return Status.UPCOMING
    if as_of < overdue_from:
        return Status.DUE
    return Status.OVERDUE


def plan_child(
    schedule: Schedule,
    birth: date,
    given: Iterable[Given],
    as_of: date,
    sex: str | None = None,
) -> list[DoseStatus]:
    """Every dose of the schedule for this child, ordered by due date."""
    given_on = {(g.code, g.dose): g.on for g in given}
    order = {r.key: i for i, r in enumerate(schedule.rules)}
    rules = _rules_for(schedule, given_on, birth, sex)
    gap = schedule.live_gap_days
    given_live = sorted(on for r in rules if r.live_injectable and (on := given_on.get(r.key)) is not None)
    planned_due: list[date] = []
    planned_earliest: list[date] = []
    # per series: the previous dose's (due-or-given date, earliest-or-given date)
    previous: dict[str, tuple[date, date]] = {}
    out: list[DoseStatus] = []
    for rule in rules:
        cb = rule.complete_before(birth)
        expires = _expires(schedule, rule, birth)
        on = given_on.get(rule.key)
        due, earliest_floor = _due_and_floor(rule, birth, as_of, previous.get(rule.series))
        if rule.live_injectable and on is None:
            due = _live_adjust(due, given_live, planned_due, gap)
        overdue_from = _overdue_from(due, cb)
        earliest: date | None = None
        if on is not None:
            status = Status.DONE
            previous[rule.series] = (on, on)
        elif as_of >= expires:
            # earliest stays None, no catch-up: the next dose of the series does not wait for this one
            status = Status.EXPIRED
        else:
            earliest = earliest_floor
            if rule.live_injectable:
                earliest = _live_adjust(earliest, given_live, planned_earliest, gap)
                planned_due.append(due)
                planned_earliest.append(earliest)
            status = _open_status(as_of, due, overdue_from)
            previous[rule.series] = (due, earliest)
        out.append(
            DoseStatus(
                rule=rule,
                due=due,
                status=status,
                given_on=on,
                earliest=earliest,
                overdue_from=overdue_from,
                complete_before=cb,
                expires=expires,
                catch_up=_catch_up(status, due, cb),
            )
        )
    out.sort(key=lambda s: (s.due, order[s.rule.key]))
    return out
