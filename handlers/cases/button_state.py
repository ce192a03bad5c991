"""A case's state as the channels' case buttons need it: whether a press moved the case on (its
status and assignee before and after), and which statuses still take buttons. A channel reads it
with the sessions of its ``AdapterContext``; it never queries the case tables itself."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.cases.models import OPEN_STATUSES as OPEN_STATUSES  # re-exported for channels' buttons
from handlers.cases.models import Case

CaseState = tuple[str, str | None] | None  # (status, assignee) of a case; None when there is none


async def case_state(sessions: async_sessionmaker[AsyncSession], number: int | None) -> CaseState:
    """A case's status and assignee (to tell whether a button press moved it on)."""
    if number is None:
        return None
    async with sessions() as session:
        row = (await session.execute(select(Case.status, Case.assignee_id).where(Case.id == number))).first()
    return (str(row[0]), row[1]) if row is not None else None
