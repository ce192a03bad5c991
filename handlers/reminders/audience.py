"""What the reminders know of a resident, for audiences (broadcasts): whether they follow a child's
vaccinations (a guardian). Plain SQL on ``Resident``, handed to broadcasts by the composition
(``handlers/audience_sources.py``): this feature does not import broadcasts, nor broadcasts it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists

from handlers.reminders.models import Guardianship
from storage.models import Resident


def guardians() -> ColumnElement[bool]:
    """Residents enrolled as a child's guardian in vaccination reminders."""
    return exists().where(Guardianship.resident_id == Resident.id)
