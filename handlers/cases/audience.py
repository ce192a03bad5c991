"""What the cases know of a resident, for audiences (broadcasts): whether they reported a case, and the
grid their reports put them in. Plain SQL on ``Resident``, handed to broadcasts by the composition
(``handlers/audience_sources.py``): this feature does not import broadcasts, nor broadcasts it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, func, select

from handlers.cases.models import Case
from storage.models import Resident


def reporters() -> ColumnElement[bool]:
    """Residents who reported at least one case."""
    return exists().where(Case.reporter_id == Resident.id)


def reports_grid() -> Any:
    """The grid most of the resident's located cases are in, the latest on a tie (correlated to
    ``Resident``): people report mostly around where they live, and one report elsewhere, or one
    with no location, does not move them."""
    return (
        select(Case.grid_code)
        .where(Case.reporter_id == Resident.id, Case.grid_code.is_not(None))
        .group_by(Case.grid_code)
        .order_by(func.count().desc(), func.max(Case.id).desc())
        .limit(1)
        .correlate(Resident)
        .scalar_subquery()
    )
