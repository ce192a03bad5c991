"""Who a broadcast reaches: every resident, the residents of some grids, residents with a tag, the staff.

An audience is ``grids`` and ``tags`` (JSON in ``broadcasts.audience``), never a list of people:

* no grids and no tags: every resident;
* grids: residents whose grid is one of them. A resident's grid is where they live, as far as we know
  it: where they told us (住址 3号楼), else the grid most of their *located* reports are in, the
  latest on a tie (a report with no location, or one still waiting for its location, does not move
  them out of it); residents with neither are reached only by broadcasts to everyone or by tag;
* tags: residents with any of them: ``guardians`` (enrolled in vaccination reminders), ``reporters``
  (reported at least one case) or a free tag stored in ``resident_tags``; grids and tags together
  mean residents with one of the tags in one of the grids;
* the tag ``staff``: active staff members (of the grids, if grids are given) instead of residents;
* communities (their codes, in a deployment of several): only residents of those communities
  (``residents.community_id``; staff: members of them), with the grids and tags above inside them;
  none: the whole 街道.

Always left out: residents who opted out of notices (退订通知) and residents blocked by an admin. A
resident with accounts on several channels is reached once, on the account they used most recently
among the channels this deployment runs (an account that blocked the bot only if no other is left).
Residents who cannot be reached (blocked the bot, or only on a channel that is not running) are still
returned, with the reason, so the broadcast counts and lists them instead of dropping them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.broadcasts.models import NoticeOptOut, ResidentTag
from storage.models import Community as CommunityRow
from storage.models import (
    Grid,
    GridWorker,
    Resident,
    ResidentIdentity,
    Staff,
    StaffIdentity,
    StaffMembership,
)

STAFF = "staff"
GUARDIANS = "guardians"
REPORTERS = "reporters"
BUILTIN_TAGS = (GUARDIANS, REPORTERS, STAFF)
TAG_PATTERN = re.compile(r"^[0-9a-z_\-\u4e00-\u9fff]{1,32}$")

BLOCKED = "blocked"  # the account blocked the bot (unreachable_since, set by handlers/kernel/reachability.py)
NO_CHANNEL = "no_channel"  # the resident's accounts are all on channels this deployment does not run


class AudienceError(ValueError):
    """An audience that names an unknown grid or tag: ``key`` and ``params`` for ``messages.render``."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Audience:
    grids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()  # community codes (upper case); none: every community

    @classmethod
    def of(
        cls, grids: Iterable[str] = (), tags: Iterable[str] = (), communities: Iterable[str] = ()
    ) -> Audience:
        return cls(
            tuple(sorted({g.strip().upper() for g in grids if g.strip()})),
            tuple(sorted({t.strip().lstrip("#").lower() for t in tags if t.strip().lstrip("#")})),
            tuple(sorted({c.strip().upper() for c in communities if c.strip()})),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Audience:
        data = data or {}
        return cls.of(data.get("grids") or (), data.get("tags") or (), data.get("communities") or ())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"grids": list(self.grids), "tags": list(self.tags)}
        if self.communities:  # added key: audiences of one community keep their old JSON
            out["communities"] = list(self.communities)
        return out

    def within(self, communities: Iterable[str]) -> Audience:
        return Audience.of(self.grids, self.tags, communities)

    @property
    def everyone(self) -> bool:
        return not self.grids and not self.tags

    @property
    def staff(self) -> bool:
        return STAFF in self.tags

    @property
    def resident_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if t != STAFF)

    @property
    def residents(self) -> bool:
        """Whether residents are in it (everyone, grids, or a resident tag)."""
        return not self.tags or bool(self.resident_tags)


@dataclass(frozen=True)
class Recipient:
    key: str  # "r12" (resident 12) or "szhang" (staff zhang): one broadcast row per key
    channel: str
    recipient: str
    resident_id: int | None = None
    reason: str | None = None  # set when the account cannot be reached (BLOCKED, NO_CHANNEL)
    last_inbound_at: datetime | None = None


@dataclass
class Counts:
    residents: int = 0
    staff: int = 0
    opted_out: int = 0  # residents of the audience left out because they opted out

    @property
    def total(self) -> int:
        return self.residents + self.staff


# -- what other features know of residents ---------------------------------------------------------------
# The tags ``guardians`` and ``reporters``, and the grid a resident's reports put them in, are other
# features' knowledge (the reminders' guardianships, the cases): they give it to broadcasts as SQL on
# ``Resident``, registered by the composition (``handlers/audience_sources.py``, installed by
# ``handlers/feature_set.py`` and by the command line), never imported from here. A built-in tag whose
# feature gave nothing is unavailable (``bc.tag_unavailable``); without a home-grid source a resident's
# grid is only the one they told us.

ResidentClause = Callable[[], ColumnElement[bool]]  # a condition on ``Resident`` (correlated)
GridOfResident = Callable[[], Any]  # a scalar subquery correlated to ``Resident``: a grid code or NULL

_TAG_SOURCES: dict[str, ResidentClause] = {}
_HOME_GRID: list[GridOfResident] = []


def provide_tag(tag: str, clause: ResidentClause) -> None:
    """Make a built-in resident tag (``GUARDIANS``, ``REPORTERS``) mean ``clause()``; again replaces it."""
    if tag not in BUILTIN_TAGS or tag == STAFF:
        raise ValueError(f"not a built-in resident tag: {tag}")
    _TAG_SOURCES[tag] = clause


def provide_home_grid(grid: GridOfResident) -> None:
    """Where a resident who has not told us lives (from the cases: the grid most of their reports are in)."""
    _HOME_GRID[:] = [grid]


def _available(tag: str) -> bool:
    return tag not in BUILTIN_TAGS or tag == STAFF or tag in _TAG_SOURCES


def _resident_grid() -> Any:
    """A resident's grid: where they told us (住址), else what the home-grid source says."""
    if not _HOME_GRID:
        return Resident.home_grid
    return func.coalesce(Resident.home_grid, _HOME_GRID[0]())


def _tag_clause(tag: str) -> ColumnElement[bool]:
    source = _TAG_SOURCES.get(tag)
    if source is not None:
        return source()
    if tag in BUILTIN_TAGS:
        return false()
    return exists().where(ResidentTag.resident_id == Resident.id, ResidentTag.tag == tag)


def _community_ids(codes: Sequence[str]) -> Any:
    return select(CommunityRow.id).where(func.upper(CommunityRow.code).in_(list(codes)))


def resident_filter(audience: Audience, *, opted_out: bool = False) -> list[ColumnElement[bool]]:
    """WHERE clauses on ``Resident`` for the audience (``opted_out``: those left out for opting out)."""
    optout = exists().where(NoticeOptOut.resident_id == Resident.id)
    clauses: list[ColumnElement[bool]] = [Resident.blocked.is_(False), optout if opted_out else ~optout]
    if audience.communities:
        clauses.append(Resident.community_id.in_(_community_ids(audience.communities)))
    if audience.grids:
        clauses.append(_resident_grid().in_(audience.grids))
    if audience.resident_tags:
        clauses.append(or_(*(_tag_clause(t) for t in audience.resident_tags)))
    return clauses


async def validate(session: AsyncSession, audience: Audience) -> None:
    """Raise ``AudienceError`` for a community, grid or tag that does not exist."""
    if audience.communities:
        codes = {c.upper(): c for c in await session.scalars(select(CommunityRow.code))}
        unknown = [c for c in audience.communities if c not in codes]
        if unknown:
            raise AudienceError(
                "bc.unknown_community", code="、".join(unknown), known="、".join(sorted(codes.values()))
            )
    if audience.grids:
        grids = select(Grid.code).where(Grid.active.is_(True))
        if audience.communities:
            grids = grids.where(Grid.community_id.in_(_community_ids(audience.communities)))
        known = set(await session.scalars(grids))
        unknown = [g for g in audience.grids if g not in known]
        if unknown:
            raise AudienceError("bc.unknown_grid", code="、".join(unknown), known="、".join(sorted(known)))
    for tag in audience.tags:
        if not TAG_PATTERN.match(tag):
            raise AudienceError("bc.bad_tag", tag=tag)
        if not _available(tag):
            raise AudienceError("bc.tag_unavailable", tag=tag)
        if tag in BUILTIN_TAGS:
            continue
        found = await session.scalar(select(ResidentTag.resident_id).where(ResidentTag.tag == tag).limit(1))
        if found is None:
            raise AudienceError("bc.unknown_tag", tag=tag, known=", ".join(await known_tags(session)))


async def known_tags(session: AsyncSession) -> list[str]:
    free = list(await session.scalars(select(ResidentTag.tag).distinct().order_by(ResidentTag.tag)))
    return [*BUILTIN_TAGS, *free]


async def count(session: AsyncSession, audience: Audience) -> Counts:
    """The audience's size: residents and staff in it, and residents left out for opting out."""
    counts = Counts()
    if audience.residents:
        counts.residents = int(
            await session.scalar(select(func.count(Resident.id)).where(*resident_filter(audience))) or 0
        )
        counts.opted_out = int(
            await session.scalar(
                select(func.count(Resident.id)).where(*resident_filter(audience, opted_out=True))
            )
            or 0
        )
    if audience.staff:
        counts.staff = len(await _staff_ids(session, audience))
    return counts


async def resident_batch(session: AsyncSession, audience: Audience, after: int, limit: int) -> list[int]:
    """The next ``limit`` resident ids of the audience above ``after`` (keyset order)."""
    if not audience.residents:
        return []
    rows = await session.scalars(
        select(Resident.id)
        .where(Resident.id > after, *resident_filter(audience))
        .order_by(Resident.id)
        .limit(limit)
    )
    return list(rows)


@dataclass(frozen=True)
class _Account:
    resident_id: int
    channel: str
    external_id: str
    last_inbound_at: datetime | None
    created_at: datetime | None
    unreachable_since: datetime | None

    @property
    def recency(self) -> datetime:
        value = self.last_inbound_at or self.created_at
        return value.replace(tzinfo=None) if value is not None else datetime.min


async def resident_recipients(
    session: AsyncSession, resident_ids: Sequence[int], channels: frozenset[str] | None
) -> list[Recipient]:
    """One address per resident: the most recently used reachable account on a running channel."""
    if not resident_ids:
        return []
    accounts: dict[int, list[_Account]] = {}
    rows = await session.execute(
        select(
            ResidentIdentity.resident_id,
            ResidentIdentity.channel,
            ResidentIdentity.external_id,
            ResidentIdentity.last_inbound_at,
            ResidentIdentity.created_at,
            ResidentIdentity.unreachable_since,
        ).where(ResidentIdentity.resident_id.in_(resident_ids))
    )
    for row in rows:
        account = _Account(*row)
        accounts.setdefault(account.resident_id, []).append(account)
    out: list[Recipient] = []
    for rid in resident_ids:
        mine = accounts.get(rid)
        if not mine:
            continue
        running = [a for a in mine if channels is None or a.channel in channels]
        reachable = [a for a in running if a.unreachable_since is None]
        pool = reachable or running or mine
        best = max(pool, key=lambda a: (a.recency, a.channel))
        reason = None if reachable else (BLOCKED if running else NO_CHANNEL)
        out.append(Recipient(f"r{rid}", best.channel, best.external_id, rid, reason, best.last_inbound_at))
    return out


async def _staff_ids(session: AsyncSession, audience: Audience) -> list[str]:
    query = select(Staff.id).where(Staff.active.is_(True))
    if audience.communities:
        members = select(StaffMembership.staff_id).where(
            StaffMembership.active.is_(True),
            StaffMembership.community_id.in_(_community_ids(audience.communities)),
        )
        query = query.where(Staff.id.in_(members))
    if audience.grids:
        leaders = select(Grid.leader_id).where(Grid.code.in_(audience.grids), Grid.leader_id.is_not(None))
        workers = select(GridWorker.staff_id).where(GridWorker.grid_code.in_(audience.grids))
        if audience.communities:
            leaders = leaders.where(Grid.community_id.in_(_community_ids(audience.communities)))
            workers = workers.where(GridWorker.community_id.in_(_community_ids(audience.communities)))
        query = query.where(or_(Staff.id.in_(leaders), Staff.id.in_(workers)))
    return list(await session.scalars(query.order_by(Staff.id)))


async def staff_recipients(
    session: AsyncSession, audience: Audience, channels: frozenset[str] | None
) -> list[Recipient]:
    """One account per staff member of the audience (empty unless the tag ``staff`` is in it)."""
    if not audience.staff:
        return []
    ids = await _staff_ids(session, audience)
    if not ids:
        return []
    accounts: dict[str, list[StaffIdentity]] = {}
    for identity in await session.scalars(
        select(StaffIdentity).where(StaffIdentity.staff_id.in_(ids)).order_by(StaffIdentity.channel)
    ):
        accounts.setdefault(identity.staff_id, []).append(identity)
    out: list[Recipient] = []
    for staff_id in ids:
        mine = accounts.get(staff_id, [])
        running = [i for i in mine if channels is None or i.channel in channels]
        reachable = [i for i in running if i.unreachable_since is None]
        pool = reachable or running or mine
        if not pool:
            continue
        best = pool[0]
        reason = None if reachable else (BLOCKED if running else NO_CHANNEL)
        out.append(Recipient(f"s{staff_id}", best.channel, best.external_id, None, reason))
    return out
