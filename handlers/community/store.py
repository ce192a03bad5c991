"""Writing the community model into the database, and reading the active one back.

Loading a file again updates grids, staff and categories in place. Nothing is ever deleted that a
case could point at: staff and grids that left the file are marked inactive, and cases are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.community.model import Community, parse_community
from handlers.kernel.channel_keys import CONSOLE
from storage.models import Category, Grid, GridWorker, Staff, StaffIdentity, utcnow
from storage.models import Community as CommunityRow

COMMUNITY_ROW = 1


@dataclass(frozen=True)
class SyncSummary:
    grids: int
    staff: int
    categories: int
    deactivated_staff: tuple[str, ...]
    deactivated_grids: tuple[str, ...]


def _config_identities(community: Community) -> list[tuple[str, str, str]]:
    """(channel, external id, staff id) for every account the file names; every staff member can also
    use the local console under their own id."""
    rows = []
    for s in community.config.staff:
        rows.append((CONSOLE, s.id, s.id))
        rows.extend((channel, external, s.id) for channel, external in s.identities())
    return rows


async def sync_community(session: AsyncSession, community: Community) -> SyncSummary:
    cfg = community.config
    await _sync_row(session, community)
    gone_staff = await _sync_staff(session, community)
    await _sync_identities(session, community)
    gone_grids = await _sync_grids(session, community)
    await _sync_categories(session, community)
    return SyncSummary(len(cfg.grids), len(cfg.staff), len(community.categories), gone_staff, gone_grids)


async def _sync_row(session: AsyncSession, community: Community) -> None:
    cfg = community.config
    row = await session.get(CommunityRow, COMMUNITY_ROW)
    if row is None:
        row = CommunityRow(id=COMMUNITY_ROW)
        session.add(row)
    row.name = cfg.community.name
    row.timezone = cfg.community.timezone
    row.source = cfg.model_dump(mode="json")
    row.loaded_at = utcnow()


async def _sync_staff(session: AsyncSession, community: Community) -> tuple[str, ...]:
    """Staff in the file become active; those who left it, inactive (returned)."""
    cfg = community.config
    staff_ids = {s.id for s in cfg.staff}
    existing_staff = {s.id: s for s in await session.scalars(select(Staff))}
    for s in cfg.staff:
        member = existing_staff.get(s.id) or Staff(id=s.id)
        member.name, member.role, member.active = s.name, s.role.value, True
        session.add(member)
    gone_staff = tuple(sorted(i for i, s in existing_staff.items() if i not in staff_ids and s.active))
    for staff_id in gone_staff:
        existing_staff[staff_id].active = False
    await session.flush()
    return gone_staff


async def _sync_identities(session: AsyncSession, community: Community) -> None:
    """Accounts named in the file are replaced; accounts bound by invite code stay."""
    await session.execute(delete(StaffIdentity).where(StaffIdentity.source == "config"))
    await session.flush()
    for channel, external, staff_id in _config_identities(community):
        bound = await session.get(StaffIdentity, (channel, external))
        if bound is None:
            session.add(
                StaffIdentity(channel=channel, external_id=external, staff_id=staff_id, source="config")
            )
        else:
            bound.staff_id, bound.source = staff_id, "config"


async def _sync_grids(session: AsyncSession, community: Community) -> tuple[str, ...]:
    """Grids and their workers as in the file; grids that left it become inactive (returned)."""
    cfg = community.config
    grid_codes = {g.code for g in cfg.grids}
    existing_grids = {g.code: g for g in await session.scalars(select(Grid))}
    for g in cfg.grids:
        grid = existing_grids.get(g.code) or Grid(code=g.code)
        grid.name, grid.leader_id, grid.active = g.name, g.leader, True
        grid.buildings, grid.places = [str(b) for b in g.buildings], list(g.places)
        session.add(grid)
    gone_grids = tuple(sorted(c for c, g in existing_grids.items() if c not in grid_codes and g.active))
    for code in gone_grids:
        existing_grids[code].active = False
    await session.flush()
    await session.execute(delete(GridWorker))
    for g in cfg.grids:
        for position, w in enumerate(g.workers):
            session.add(
                GridWorker(
                    grid_code=g.code, staff_id=w.staff, categories=list(w.categories), position=position
                )
            )
    return gone_grids


async def _sync_categories(session: AsyncSession, community: Community) -> None:
    existing_categories = {c.code: c for c in await session.scalars(select(Category))}
    for c in community.categories:
        category = existing_categories.get(c.code) or Category(code=c.code)
        category.name, category.time_limit_hours, category.enabled = c.name, c.time_limit_hours, c.enabled
        session.add(category)
    for code, category in existing_categories.items():
        if code not in {c.code for c in community.categories}:
            category.enabled = False
    await session.flush()


async def stored_community(session: AsyncSession) -> Community | None:
    """The community last loaded into this database (shared by every process using it)."""
    row = await session.get(CommunityRow, COMMUNITY_ROW)
    return None if row is None else parse_community(row.source)
