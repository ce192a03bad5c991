"""Case numbers as people see and type them.

A case has a number within its community (``Case.number``). A deployment of one community shows it
as before ("#12": the number is the case's id there); a deployment of several shows the community's
code with it ("#HPL-12"), and staff may type ``HPL-12``, ``hpl12`` or a bare number (within their only
community, or the case's id, which is what every number was before 0010). A button carries the id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import func, select

from handlers.cases.models import Case
from handlers.kernel.community_port import CommunityPort
from handlers.kernel.context import Turn
from storage.models import Community as CommunityRow

MEMO = "community_ids"
# "HPL-12", "hpl12", "HPL－12", "HPL 12": a community code (letters, then letters or digits) before a
# number; only a code the deployment has counts.
_CODED = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9]{0,15}?)\s?[-－]?\s?([0-9]{1,9})(?![0-9])")


async def _ids(turn: Turn, *, fresh: bool = False) -> dict[str, int]:
    ids = turn.services.memo.get(MEMO)
    if ids is None or fresh:
        rows = await turn.session.execute(select(CommunityRow.code, CommunityRow.id))
        ids = {code.upper(): row_id for code, row_id in rows.all()}
        turn.services.memo[MEMO] = ids
    return ids


async def row_id(turn: Turn, community: CommunityPort) -> int | None:
    """The community's row id (looked up once per process, again on a miss)."""
    code = community.code.upper()
    found = (await _ids(turn)).get(code)
    return found if found is not None else (await _ids(turn, fresh=True)).get(code)


async def community_of(turn: Turn, community_id: int | None) -> CommunityPort | None:
    if community_id is None:
        return None
    ids = await _ids(turn)
    if community_id not in ids.values():
        ids = await _ids(turn, fresh=True)
    code = next((c for c, i in ids.items() if i == community_id), None)
    return turn.services.street.get(code) if code is not None else None


def label(turn: Turn, case: Case) -> str | int:
    """The number people see: ``12`` in a deployment of one community, ``HPL-12`` in one of several."""
    if not turn.services.several or case.number is None or case.community_id is None:
        return case.id
    ids = turn.services.memo.get(MEMO) or {}
    code = next((c for c, i in ids.items() if i == case.community_id), None)
    return f"{code}-{case.number}" if code is not None else case.id


async def number_case(turn: Turn, case: Case) -> None:
    """Put a new (flushed) case in the turn's community and give it the next number there."""
    community_id = await row_id(turn, turn.community)
    case.community_id = community_id
    if not turn.services.several or community_id is None:
        case.number = case.id  # one community: the number is the id, as it always was
        return
    # One number at a time per community: the community's row is the lock (SQLite: the writer's).
    await turn.session.execute(
        select(CommunityRow.id).where(CommunityRow.id == community_id).with_for_update()
    )
    last = await turn.session.scalar(select(func.max(Case.number)).where(Case.community_id == community_id))
    case.number = int(last or 0) + 1


def read_coded(turn: Turn, text: str) -> tuple[str, CommunityPort | None]:
    """ "接单 HPL-12" → ("接单 12", HPL); the text unchanged and None when it names no code."""
    if not turn.services.several:
        return text, None
    for match in _CODED.finditer(text):
        community = turn.services.street.get(match.group(1))
        if community is not None:
            return text[: match.start()] + match.group(2) + text[match.end() :], community
    return text, None


async def find(turn: Turn, number: int, *, within: CommunityPort | None = None) -> Case | None:
    """The case a typed number names: by id in a deployment of one community (and for a button);
    else the number in the community the text named, or in ``within`` (the staff member's only
    community, the resident's), falling back to the id (numbers from before 0010)."""
    if not turn.services.several or turn.button:
        return await turn.session.get(Case, number)
    scope = turn.number_scope or within
    if scope is not None:
        community_id = await row_id(turn, scope)
        found = await turn.session.scalar(
            select(Case).where(Case.community_id == community_id, Case.number == number)
        )
        if found is not None or turn.number_scope is not None:
            return found
    return await turn.session.get(Case, number)


async def scope_of(turn: Turn, staff_id: str) -> list[tuple[int | None, CommunityPort]] | None:
    """The communities a staff member sees (row id, community), or None for all of them: a
    deployment of one community, or a 街道 admin."""
    street = turn.services.street
    if not turn.services.several or staff_id in street.admins:
        return None
    return [(await row_id(turn, c), c) for c in street.of_staff(staff_id)]


async def scope_rows(
    turn: Turn, communities: Iterable[CommunityPort]
) -> list[tuple[int | None, CommunityPort]]:
    """Each community with its row id (None for one not in the database)."""
    return [(await row_id(turn, c), c) for c in communities]
