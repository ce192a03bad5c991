"""Duplicate reports: the same category at the same building or place while a case there is open.
The resident is offered to follow the open case instead; staff can also merge duplicates."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers.cases import numbers
from handlers.cases.models import OPEN_STATUSES, Case, CaseFollower
from handlers.community.location import LocationMatch
from handlers.kernel.context import Turn
from handlers.kernel.people import Actor


async def find_open(
    turn: Turn, category: str | None, location: LocationMatch | None, exclude: int | None = None
) -> Case | None:
    if category is None or category == "other" or location is None:
        return None
    if location.building is None and location.place is None:
        return None
    since = turn.now - timedelta(days=turn.community.config.limits.duplicate_window_days)
    query = select(Case).where(
        Case.category_code == category,
        Case.status.in_(OPEN_STATUSES),
        Case.created_at >= since,
        Case.grid_code == location.grid,
    )
    if location.building is not None:
        query = query.where(Case.building == location.building)
    else:
        query = query.where(Case.place == location.place)
    if exclude is not None:
        query = query.where(Case.id != exclude)
    if turn.services.several:  # each community has its own G1 and its own "3号楼"
        query = query.where(Case.community_id == await numbers.row_id(turn, turn.community))
    return await turn.session.scalar(query.order_by(Case.id).limit(1))


async def follow(turn: Turn, case: Case, actor: Actor) -> bool:
    """Add the resident to the case's followers; False when they already follow or reported it."""
    address = actor.address
    if case.reporter_external == address.recipient and case.channel == address.channel:
        return False
    if await turn.session.get(CaseFollower, (case.id, address.channel, address.recipient)) is not None:
        return False
    turn.session.add(
        CaseFollower(
            case_id=case.id,
            channel=address.channel,
            external_id=address.recipient,
            resident_id=actor.resident.id if actor.resident else None,
            created_at=turn.now,
        )
    )
    return True


async def merge_followers(turn: Turn, duplicate: Case, original: Case) -> None:
    """The duplicate's reporter and followers follow the original from now on."""
    addresses = set()
    if duplicate.reporter_external is not None:
        addresses.add((duplicate.channel, duplicate.reporter_external, duplicate.reporter_id))
    for f in await turn.session.scalars(select(CaseFollower).where(CaseFollower.case_id == duplicate.id)):
        addresses.add((f.channel, f.external_id, f.resident_id))
    for channel, external, resident in addresses:
        if original.channel == channel and original.reporter_external == external:
            continue
        if await turn.session.get(CaseFollower, (original.id, channel, external)) is None:
            turn.session.add(
                CaseFollower(
                    case_id=original.id,
                    channel=channel,
                    external_id=external,
                    resident_id=resident,
                    created_at=turn.now,
                )
            )
