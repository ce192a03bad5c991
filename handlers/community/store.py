"""Writing a 街道 (or one community) into the database, and reading the loaded one back.

Every community of the file is written in the caller's one transaction. Loading again updates grids,
staff and categories in place. Nothing is ever deleted that a case could point at: staff, grids and
communities that left the file are marked inactive, and cases are untouched. Staff ids are global (one
person may work in several communities): a staff member leaves a community (their membership becomes
inactive) and is inactive once they are in none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.community.model import Community, StaffConfig, parse_community
from handlers.community.street import Street
from handlers.kernel.channel_keys import CONSOLE
from storage.models import (
    Category,
    Grid,
    GridWorker,
    Staff,
    StaffIdentity,
    StaffMembership,
    utcnow,
)
from storage.models import Community as CommunityRow
from storage.models import Street as StreetRow

STREET_ROW = 1


@dataclass(frozen=True)
class SyncSummary:
    """What loading did to one community."""

    grids: int
    staff: int
    categories: int
    deactivated_staff: tuple[str, ...]
    deactivated_grids: tuple[str, ...]
    code: str = ""
    name: str = ""


@dataclass(frozen=True)
class StreetSummary:
    communities: tuple[SyncSummary, ...]
    deactivated_communities: tuple[str, ...]


def _config_identities(staff: Iterable[StaffConfig]) -> list[tuple[str, str, str]]:
    """(channel, external id, staff id) for every account the file names; every staff member can also
    use the local console under their own id."""
    rows = []
    for s in staff:
        rows.append((CONSOLE, s.id, s.id))
        rows.extend((channel, external, s.id) for channel, external in s.identities())
    return rows


async def sync_community(session: AsyncSession, community: Community) -> SyncSummary:
    """One community file: a street of one (the single-community deployment)."""
    street = Street(
        name=community.name,
        timezone=community.config.community.timezone,
        communities=(community,),
        single_file=True,
    )
    return (await sync_street(session, street)).communities[0]


async def sync_street(session: AsyncSession, street: Street) -> StreetSummary:
    await _sync_street_row(session, street)
    rows, gone_communities = await _sync_community_rows(session, street)
    everyone = _all_staff(street)
    await _sync_staff(session, everyone)
    gone_staff = await _sync_memberships(session, street, rows)
    await _sync_identities(session, everyone.values())
    gone_grids = await _sync_grids(session, street, rows)
    await _sync_categories(session, street, rows)
    summaries = []
    for community in street:
        row_id = rows[community.code]
        cfg = community.config
        summaries.append(
            SyncSummary(
                grids=len(cfg.grids),
                staff=len(cfg.staff),
                categories=len(community.categories),
                deactivated_staff=gone_staff[row_id],
                deactivated_grids=gone_grids[row_id],
                code=community.code,
                name=community.name,
            )
        )
    return StreetSummary(tuple(summaries), gone_communities)


async def _sync_street_row(session: AsyncSession, street: Street) -> None:
    row = await session.get(StreetRow, STREET_ROW)
    if row is None:
        row = StreetRow(id=STREET_ROW)
        session.add(row)
    row.name, row.timezone, row.admins = street.name, street.timezone, list(street.admins)
    row.single_file, row.loaded_at = street.single_file, utcnow()


async def _sync_community_rows(
    session: AsyncSession, street: Street
) -> tuple[dict[str, int], tuple[str, ...]]:
    """A row per community, found by code (a single community takes the one row there is, whatever
    its code was); rows of communities no longer in the file become inactive (their codes returned)."""
    existing = list(await session.scalars(select(CommunityRow).order_by(CommunityRow.id)))
    by_code = {row.code.upper(): row for row in existing}
    ids: dict[str, int] = {}
    kept: set[int] = set()
    chosen: dict[str, CommunityRow] = {}
    for community in street:
        row = by_code.get(community.code.upper())
        if row is None and street.only is not None and len(existing) == 1:
            row = existing[0]
        if row is None:
            row = CommunityRow()
            session.add(row)
        cfg = community.config
        row.code, row.aliases, row.active = community.code, list(cfg.community.aliases), True
        row.name, row.timezone = cfg.community.name, cfg.community.timezone
        row.source, row.loaded_at = cfg.model_dump(mode="json"), utcnow()
        chosen[community.code] = row
    await session.flush()  # one flush for every new row (their ids)
    for community_code, row in chosen.items():
        ids[community_code] = row.id
        kept.add(row.id)
    gone = []
    for row in existing:
        if row.id not in kept and row.active:
            row.active = False
            gone.append(row.code)
    return ids, tuple(sorted(gone))


def _all_staff(street: Street) -> dict[str, StaffConfig]:
    everyone: dict[str, StaffConfig] = {}
    for community in street:
        for s in community.config.staff:
            everyone.setdefault(s.id, s)
    return everyone


async def _sync_staff(session: AsyncSession, everyone: dict[str, StaffConfig]) -> None:
    """Staff in the file become active; those in no community of it, inactive."""
    existing = {s.id: s for s in await session.scalars(select(Staff))}
    for s in everyone.values():
        member = existing.get(s.id) or Staff(id=s.id)
        member.name, member.role, member.active = s.name, s.role.value, True
        session.add(member)
    for staff_id, member in existing.items():
        if staff_id not in everyone:
            member.active = False
    await session.flush()


async def _sync_memberships(
    session: AsyncSession, street: Street, rows: dict[str, int]
) -> dict[int, tuple[str, ...]]:
    """Each community's staff; returns, per community row, who left it since the last load."""
    existing: dict[int, dict[str, StaffMembership]] = {}
    for m in await session.scalars(select(StaffMembership)):
        existing.setdefault(m.community_id, {})[m.staff_id] = m
    gone: dict[int, tuple[str, ...]] = {}
    for community in street:
        row_id = rows[community.code]
        members = existing.get(row_id, {})
        listed = {s.id for s in community.config.staff}
        for staff_id in listed:
            membership = members.get(staff_id)
            if membership is None:
                session.add(StaffMembership(staff_id=staff_id, community_id=row_id, active=True))
            elif not membership.active:
                membership.active = True
        left = sorted(staff_id for staff_id, m in members.items() if staff_id not in listed and m.active)
        for staff_id in left:
            members[staff_id].active = False
        gone[row_id] = tuple(left)
    for community_id, members in existing.items():
        if community_id not in gone:  # a community no longer served
            for m in members.values():
                m.active = False
    await session.flush()
    return gone


async def _sync_identities(session: AsyncSession, staff: Iterable[StaffConfig]) -> None:
    """Accounts named in the file are bound to their staff member as the file says; config accounts the
    file no longer names go; accounts bound by invite code stay (rebound when the file names them).
    Written as a difference in one read and one flush (a district has thousands of accounts; a reload
    of an unchanged file writes nothing)."""
    wanted = {(channel, external): staff_id for channel, external, staff_id in _config_identities(staff)}
    existing = {(i.channel, i.external_id): i for i in await session.scalars(select(StaffIdentity))}
    for key, row in existing.items():
        if key not in wanted and row.source == "config":
            await session.delete(row)
    for (channel, external), staff_id in wanted.items():
        row = existing.get((channel, external))
        if row is None:
            session.add(
                StaffIdentity(channel=channel, external_id=external, staff_id=staff_id, source="config")
            )
            continue
        # A config account is as if written anew (no unreachable mark); an account bound by invite
        # code that the file now names is rebound and keeps its mark.
        mark = None if row.source == "config" else row.unreachable_since
        if (row.staff_id, row.source, row.unreachable_since) != (staff_id, "config", mark):
            row.staff_id, row.source, row.unreachable_since = staff_id, "config", mark
    await session.flush()


async def _by_community(session: AsyncSession, model: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The rows of ``model`` (grids, categories) of these communities, by community and code: one read."""
    found: dict[int, dict[str, Any]] = {}
    for row in await session.scalars(select(model).where(model.community_id.in_(ids))):
        found.setdefault(row.community_id, {})[row.code] = row
    return found


def _assign(row: Any, **values: Any) -> None:
    """Set what differs only (an unchanged reload writes nothing)."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


async def _sync_grids(
    session: AsyncSession, street: Street, rows: dict[str, int]
) -> dict[int, tuple[str, ...]]:
    """Every community's grids and their workers as in the file; grids that left it become inactive
    (returned per community). A few statements for the whole 街道, not a few per community."""
    ids = [rows[c.code] for c in street]
    existing = await _by_community(session, Grid, ids)
    gone: dict[int, tuple[str, ...]] = {}
    for community in street:
        community_id = rows[community.code]
        grids = existing.get(community_id, {})
        cfg = community.config
        for g in cfg.grids:
            grid = grids.get(g.code)
            if grid is None:
                grid = Grid(community_id=community_id, code=g.code)
                session.add(grid)
            _assign(
                grid,
                name=g.name,
                leader_id=g.leader,
                active=True,
                buildings=[str(b) for b in g.buildings],
                places=list(g.places),
            )
        listed = {g.code for g in cfg.grids}
        gone[community_id] = tuple(sorted(c for c, g in grids.items() if c not in listed and g.active))
        for code in gone[community_id]:
            grids[code].active = False
    await session.flush()
    await session.execute(delete(GridWorker).where(GridWorker.community_id.in_(ids)))
    session.add_all(
        GridWorker(
            community_id=rows[community.code],
            grid_code=g.code,
            staff_id=w.staff,
            categories=list(w.categories),
            position=position,
        )
        for community in street
        for g in community.config.grids
        for position, w in enumerate(g.workers)
    )
    return gone


async def _sync_categories(session: AsyncSession, street: Street, rows: dict[str, int]) -> None:
    existing = await _by_community(session, Category, [rows[c.code] for c in street])
    for community in street:
        community_id = rows[community.code]
        categories = existing.get(community_id, {})
        for c in community.categories:
            category = categories.get(c.code)
            if category is None:
                category = Category(community_id=community_id, code=c.code)
                session.add(category)
            _assign(category, name=c.name, time_limit_hours=c.time_limit_hours, enabled=c.enabled)
        codes = {c.code for c in community.categories}
        for code, category in categories.items():
            if code not in codes:
                category.enabled = False
    await session.flush()


async def stored_street(session: AsyncSession) -> Street | None:
    """The 街道 last loaded into this database (shared by every process using it): its active
    communities in the order they were first loaded."""
    rows = list(
        await session.scalars(
            select(CommunityRow).where(CommunityRow.active.is_(True)).order_by(CommunityRow.id)
        )
    )
    if not rows:
        return None
    communities = tuple(parse_community(row.source) for row in rows)
    info = await session.get(StreetRow, STREET_ROW)
    if info is None:
        first = communities[0]
        return Street(first.name, first.config.community.timezone, communities, single_file=True)
    return Street(
        name=info.name,
        timezone=info.timezone,
        communities=communities,
        admins=tuple(info.admins),
        single_file=info.single_file,
    )


async def stored_community(session: AsyncSession) -> Community | None:
    """The community last loaded (the first one of a 街道): for what is not per community yet."""
    street = await stored_street(session)
    return None if street is None else street.communities[0]


async def community_ids(session: AsyncSession) -> dict[str, int]:
    """Each active community's row id by its code."""
    rows = await session.execute(
        select(CommunityRow.code, CommunityRow.id).where(CommunityRow.active.is_(True))
    )
    return {code: row_id for code, row_id in rows.all()}
