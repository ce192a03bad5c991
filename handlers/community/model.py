"""The community model (grids, buildings, places, staff, categories) read from its YAML file.

The YAML schema is a public contract written by other tools: keys may be added, never renamed. Unknown
keys are refused so that a typo ("leadr") is reported instead of silently ignored. Every problem is
reported with the path of the offending key, e.g. ``grids[1].workers[0].staff``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from handlers.community.classify import (
    OTHER,
    CategoryConfigError,
    CategoryDef,
    Classifier,
    load_default_categories,
    merge_categories,
)
from handlers.community.config_checks import (
    CommunityConfigError,
    Problem,
    StaffLedger,
    known_timezone,
    parse_yaml,
    read_text,
)
from handlers.community.location import BuildingSet, BuildingSpecError, GridArea, Locator, parse_buildings
from handlers.community.urgent import kind_keys as emergency_keys
from handlers.community.worktime import DEFAULT_HOURS, WorkCalendar, WorkTimeError, parse_period
from handlers.kernel.channel_keys import IDENTITY_KEYS
from messages import render
from storage.models import Role

SAMPLE_CONFIG = "sample_community.yaml"
# The code of a community whose file names none (a single-community deployment).
DEFAULT_CODE = "C1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CommunityInfo(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    # The short code in case numbers (HPL-12) and door codes; unique in a 街道 file (default DEFAULT_CODE).
    code: str | None = Field(default=None, min_length=1, max_length=16, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    aliases: list[str] = Field(default_factory=list)  # what residents call it: 和平里, 和平里小区

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_timezone(value)


class WorkerAssignment(_Strict):
    staff: str
    categories: list[str] = Field(default_factory=list)


class GridConfig(_Strict):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1)
    buildings: list[str | int] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    leader: str | None = None
    workers: list[WorkerAssignment] = Field(default_factory=list)
    place_coordinates: dict[str, tuple[float, float]] = Field(
        default_factory=dict
    )  # added: place → (lat, lon)
    place_aliases: dict[str, str] = Field(default_factory=dict)  # added: everyday name → one of places


class _StaffBase(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    role: Role

    @field_validator("phone", mode="before", check_fields=False)
    @classmethod
    def _phone_as_written(cls, value: Any) -> Any:
        # `phone: 13800000000` unquoted is a YAML integer: it is still the number the file means.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def identities(self) -> list[tuple[str, str]]:
        """(channel, account) for every channel account the file names for this staff member."""
        accounts = ((key, getattr(self, key)) for key in IDENTITY_KEYS)
        return [(key, str(value)) for key, value in accounts if value is not None and value != ""]


# One optional account field per channel (`telegram: 123456789`), from the kernel's list of identity keys,
# so that a new channel's key needs no edit here; then `phone`, kept for staff use only and never logged.
StaffConfig = create_model(
    "StaffConfig",
    __base__=_StaffBase,
    **{key: (kind | None, None) for key, kind in IDENTITY_KEYS.items()},  # type: ignore[call-overload]
    phone=(str | None, None),
)


class WorkingTimeConfig(_Strict):
    """When the clock of a time limit runs (added key; defaults: 08:30-12:00 and 13:30-17:30,
    Monday to Friday, national holidays and make-up days from handlers/data/holidays_cn.yaml)."""

    hours: list[str] = Field(default_factory=lambda: list(DEFAULT_HOURS))
    weekdays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)
    national_holidays: bool = True

    @field_validator("hours")
    @classmethod
    def _periods(cls, value: list[str]) -> list[str]:
        for period in value:
            try:
                parse_period(period)
            except WorkTimeError:
                raise ValueError(render("config.bad_hours", value=period)) from None
        if not value:
            raise ValueError(render("config.bad_hours", value="[]"))
        return value


class LimitsConfig(_Strict):
    reports_per_hour: int = Field(default=10, ge=1)  # per resident, then a polite refusal
    duplicate_window_days: int = Field(default=14, ge=0)  # open cases this recent are offered to follow
    urgent_factor: float = Field(default=0.5, gt=0, le=1)  # an urgent report's time limit is shortened
    auto_confirm_days: int = Field(default=7, ge=1)  # a resolved case nobody rates is confirmed


class DigestConfig(_Strict):
    time: str = "08:30"  # local time of the daily digest to workers and leaders
    enabled: bool = True

    @field_validator("time")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(render("config.bad_hours", value=value)) from None
        return value


class CommunityConfig(_Strict):
    community: CommunityInfo
    grids: list[GridConfig] = Field(default_factory=list)
    staff: list[StaffConfig] = Field(default_factory=list)
    categories: list[dict[str, Any]] = Field(default_factory=list)
    working_time: WorkingTimeConfig = Field(default_factory=WorkingTimeConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    # added: emergency numbers by kind (gas company repair line, lift rescue …); see handlers.cases.emergency
    emergency: dict[str, str | int] = Field(default_factory=dict)  # YAML reads an unquoted 96777 as an int


@dataclass(frozen=True)
class Community:
    """A validated community: the parsed config plus the structures routing needs."""

    config: CommunityConfig
    categories: tuple[CategoryDef, ...]
    buildings: Mapping[str, BuildingSet] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.community.name

    @property
    def code(self) -> str:
        return self.config.community.code or DEFAULT_CODE

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.config.community.timezone)

    @cached_property
    def staff(self) -> dict[str, StaffConfig]:
        return {s.id: s for s in self.config.staff}

    @cached_property
    def grids(self) -> dict[str, GridConfig]:
        return {g.code: g for g in self.config.grids}

    @cached_property
    def category_names(self) -> dict[str, str]:
        return {c.code: c.name for c in self.categories}

    @cached_property
    def locator(self) -> Locator:
        return Locator(
            [
                GridArea(
                    code,
                    self.buildings[code],
                    tuple(self.grids[code].places),
                    tuple(self.grids[code].place_aliases.items()),
                )
                for code in self.grids
            ]
        )

    @cached_property
    def calendar(self) -> WorkCalendar:
        wt = self.config.working_time
        return WorkCalendar.build(
            self.timezone, wt.hours, wt.weekdays, wt.holidays, wt.workdays, national=wt.national_holidays
        )

    @cached_property
    def category_limits(self) -> dict[str, float]:
        return {c.code: c.time_limit_hours for c in self.categories}

    def leaders(self) -> list[str]:
        return sorted({g.leader for g in self.config.grids if g.leader})

    @cached_property
    def classifier(self) -> Classifier:
        return shared_classifier(tuple(c for c in self.categories if c.enabled))

    def admins(self) -> list[str]:
        return [s.id for s in self.config.staff if s.role == Role.ADMIN]


@lru_cache(maxsize=32)
def shared_classifier(categories: tuple[CategoryDef, ...]) -> Classifier:
    """One classifier per set of categories: the communities of a 街道 that keep the default categories
    share one (it is read-only once built), instead of one each (~20 ms and ~1 MB apiece)."""
    return Classifier(list(categories))


def _key(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p in {"str", "int"})]
        kind = item["type"]
        if kind == "extra_forbidden":
            message = render("config.unknown_key")
        elif kind == "missing":
            message = render("config.missing_key")
        elif kind == "enum":
            message = render("config.bad_role", allowed="、".join(r.value for r in Role))
        else:
            message = render("config.bad_value", detail=item["msg"].removeprefix("Value error, "))
        problems.append(Problem(_key(loc), message))
    return problems


def _semantic_problems(
    cfg: CommunityConfig, categories: Sequence[CategoryDef]
) -> tuple[list[Problem], dict[str, BuildingSet]]:
    problems: list[Problem] = []
    staff_ids: set[str] = set()
    ledger = StaffLedger()  # a chat account bound to one staff id only
    for i, s in enumerate(cfg.staff):
        if s.id in staff_ids:
            problems.append(Problem(f"staff[{i}].id", render("config.duplicate_staff", id=s.id)))
        staff_ids.add(s.id)
        problems += ledger.accounts(f"staff[{i}]", s)

    # `other` is no configured category but a worker may still take the reports of no category
    # in their grid (路灯, 电梯, 漏水 …) instead of the grid leader.
    category_codes = {c.code for c in categories if c.enabled} | {OTHER}
    grid_codes: set[str] = set()
    building_sets: dict[str, BuildingSet] = {}
    place_owner: dict[str, str] = {}
    for gi, grid in enumerate(cfg.grids):
        where = f"grids[{gi}]"
        if grid.code in grid_codes:
            problems.append(Problem(f"{where}.code", render("config.duplicate_grid", code=grid.code)))
        grid_codes.add(grid.code)
        if grid.leader is not None and grid.leader not in staff_ids:
            problems.append(Problem(f"{where}.leader", render("config.unknown_staff", id=grid.leader)))
        problems += _worker_problems(where, grid, staff_ids, category_codes)
        problems += _building_problems(where, grid, building_sets)
        problems += _place_problems(where, grid, place_owner)
    known_numbers = emergency_keys()
    for key in cfg.emergency:
        if key not in known_numbers:
            problems.append(
                Problem(
                    f"emergency.{key}",
                    render("config.unknown_emergency", key=key, known="、".join(sorted(known_numbers))),
                )
            )
    return problems, building_sets


def _worker_problems(
    where: str, grid: GridConfig, staff_ids: set[str], category_codes: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    seen_workers: set[str] = set()
    for wi, worker in enumerate(grid.workers):
        if worker.staff not in staff_ids:
            problems.append(
                Problem(f"{where}.workers[{wi}].staff", render("config.unknown_staff", id=worker.staff))
            )
        if worker.staff in seen_workers:
            problems.append(
                Problem(f"{where}.workers[{wi}].staff", render("config.duplicate_worker", id=worker.staff))
            )
        seen_workers.add(worker.staff)
        for ci, code in enumerate(worker.categories):
            if code not in category_codes:
                problems.append(
                    Problem(
                        f"{where}.workers[{wi}].categories[{ci}]",
                        render("config.unknown_category", code=code, known="、".join(sorted(category_codes))),
                    )
                )
    return problems


def _building_problems(where: str, grid: GridConfig, building_sets: dict[str, BuildingSet]) -> list[Problem]:
    """The grid's buildings (added to ``building_sets``): each spec readable, none in two grids."""
    problems: list[Problem] = []
    specs = [str(b) for b in grid.buildings]
    try:
        buildings = parse_buildings(specs)
    except BuildingSpecError as exc:
        index = specs.index(exc.spec) if exc.spec in specs else 0
        problems.append(Problem(f"{where}.buildings[{index}]", render("config.bad_building", spec=exc.spec)))
        buildings = parse_buildings([])
    for other_code, other in building_sets.items():
        shared = buildings.overlaps(other)
        if shared:
            problems.append(
                Problem(
                    f"{where}.buildings",
                    render(
                        "config.building_in_two_grids",
                        buildings="、".join(shared),
                        grid=grid.code,
                        other=other_code,
                    ),
                )
            )
    building_sets[grid.code] = buildings
    return problems


def _place_problems(where: str, grid: GridConfig, place_owner: dict[str, str]) -> list[Problem]:
    """The grid's places and their aliases (added to ``place_owner``): none in two grids, no
    coordinates or alias for a place the grid does not list."""
    problems: list[Problem] = []
    for pi, place in enumerate(grid.places):
        if place in place_owner:
            problems.append(
                Problem(
                    f"{where}.places[{pi}]",
                    render(
                        "config.place_in_two_grids", place=place, grid=grid.code, other=place_owner[place]
                    ),
                )
            )
        place_owner.setdefault(place, grid.code)
    for place in grid.place_coordinates:
        if place not in grid.places:
            problems.append(
                Problem(f"{where}.place_coordinates.{place}", render("config.unknown_place", place=place))
            )
    for alias, place in grid.place_aliases.items():
        if place not in grid.places:
            problems.append(
                Problem(f"{where}.place_aliases.{alias}", render("config.unknown_place", place=place))
            )
        elif alias in place_owner and place_owner[alias] != grid.code:
            problems.append(
                Problem(
                    f"{where}.place_aliases.{alias}",
                    render(
                        "config.place_in_two_grids", place=alias, grid=grid.code, other=place_owner[alias]
                    ),
                )
            )
        place_owner.setdefault(alias, grid.code)
    return problems


def parse_community(data: Any) -> Community:
    """Validate a loaded YAML document; raises CommunityConfigError listing every problem found."""
    if not isinstance(data, Mapping):
        raise CommunityConfigError([Problem("(file)", render("config.not_a_mapping"))])
    cfg, problems = _validate_all(data)
    if cfg is None:
        raise CommunityConfigError(problems)
    try:
        categories = merge_categories(load_default_categories(), cfg.categories)
    except CategoryConfigError as exc:
        raise CommunityConfigError(
            [*problems, Problem(exc.key, render("config.bad_category", reason=exc.reason))]
        ) from None
    semantic, buildings = _semantic_problems(cfg, categories)
    problems += [p for p in semantic if p.key not in {q.key for q in problems}]
    if problems:
        raise CommunityConfigError(problems)
    return Community(config=cfg, categories=tuple(categories), buildings=buildings)


def _validate_all(data: Any, schema: type[Any] = CommunityConfig) -> tuple[Any, list[Problem]]:
    """Validate, and on errors set the faulty parts aside and validate the rest again, so that one
    run reports every problem (unknown keys and bad values, then the cross-references) rather than
    one round at a time. Returns the config of what is left (None if nothing valid is left)."""
    import copy

    work = copy.deepcopy(data)
    problems: list[Problem] = []
    for _round in range(10):
        try:
            cfg = schema.model_validate(work)
        except ValidationError as exc:
            found = _pydantic_problems(exc)
            problems += [p for p in found if p.key not in {q.key for q in problems}]
            if not _set_aside(work, exc):
                return None, problems
            continue
        return cfg, problems
    return None, problems


def _at(data: Any, loc: Sequence[Any]) -> Any:
    for part in loc:
        data = data[part]
    return data


def _set_aside(data: Any, error: ValidationError) -> bool:
    """Remove what each error points at (a key, or the list element holding a missing key);
    False when nothing could be removed (a required top-level part is wrong)."""
    removed = False
    for item in sorted(error.errors(), key=lambda e: [str(p) for p in e["loc"]], reverse=True):
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p in {"str", "int"})]
        if item["type"] == "enum" and loc and loc[-1] == "role":
            # keep the person (grids refer to them) with a stand-in role; the bad role is reported
            try:
                _at(data, loc[:-1])["role"] = Role.WORKER.value
                removed = True
                continue
            except (KeyError, IndexError, TypeError):
                pass
        if item["type"] in {"missing", "enum"}:
            # a required part: drop the whole list element it belongs to
            while loc and not isinstance(loc[-1], int):
                loc.pop()
        parent: Any = data
        try:
            for part in loc[:-1]:
                parent = parent[part]
            if loc and isinstance(parent, dict | list):
                del parent[loc[-1]]
                removed = True
        except (KeyError, IndexError, TypeError):
            continue
    return removed


def load_community(path: str | Path | None = None) -> Community:
    """The community from a YAML file, or the sample community shipped with the package."""
    if path is None:
        text = resources.files("bot").joinpath("data", SAMPLE_CONFIG).read_text(encoding="utf-8")
    else:
        text = read_text(path)
    return parse_community(parse_yaml(text))
