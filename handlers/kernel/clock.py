"""The kernel's clock: aware UTC now (for channels, which must not import ``storage/`` for it), and a
moment written in a community's local time for people to read."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Protocol

from messages import render
from storage.models import utcnow as utcnow


class Zoned(Protocol):
    """Anything with the time zone its people live in (a community)."""

    @property
    def timezone(self) -> tzinfo: ...


def local_time(community: Zoned, moment: datetime) -> str:
    """``moment`` as people there read it: "12月04日 09:00" (the format is the ``time.local`` text)."""
    local = moment.astimezone(community.timezone)
    return render(
        "time.local", month=f"{local.month:02d}", day=f"{local.day:02d}", clock=local.strftime("%H:%M")
    )
