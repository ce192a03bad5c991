"""The demo's clock and its periodic jobs: ``outreach-bot demo`` runs what ``serve`` runs on a timer
(escalation scan, digest, reminders, broadcasts; the outbox after each), and ``/time +3h`` moves the
demo's clock so a newcomer sees an escalation, a reminder or a broadcast go out without waiting."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.models import utcnow

log = logging.getLogger(__name__)

_STEP = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
JOB_SECONDS = 30.0  # how often an interactive demo runs the jobs by itself


class DemoClock:
    """Real time plus an offset that ``/time`` moves: ``+3h`` forward only; a set time may be any day
    (a Monday morning shows the working-time limits best), after which it runs on from there."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += max(delta, timedelta(0))

    def set_local(self, moment: datetime) -> None:
        self.offset = moment - utcnow()


def parse_step(text: str) -> timedelta | None:
    """``+3h``, ``+30m``, ``+2d``, ``+1d2h`` → the timedelta; None for anything else."""
    text = text.strip()
    if not text.startswith("+"):
        return None
    body = text[1:].replace(" ", "")
    steps = _STEP.findall(body)
    if not steps or "".join(n + u for n, u in steps) != body:
        return None
    return sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in steps), timedelta(0))


def parse_local(text: str, tz: ZoneInfo) -> datetime | None:
    """``2026-11-23 09:30`` in the community's time zone; None if it is not such a time."""
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    return moment.replace(tzinfo=tz)


def with_clock(app: Any, clock: DemoClock) -> Any:
    """The app with its services reading ``clock`` (services are immutable: a new set, and a
    conversation over it)."""

    app.services = replace(app.services, clock=clock)
    from handlers.feature_set import conversation  # the demo loads it with the app, not at import

    app.conversation = conversation(app.services)
    return app


async def run_jobs(app: Any) -> None:
    """One pass of each periodic job, as ``serve`` runs them; a failing job is logged on one line and
    does not end the demo."""
    from handlers.broadcasts.jobs import run_job as broadcasts
    from handlers.cases import deadlines, digest
    from handlers.reminders.jobs import run_job as reminders

    jobs = (
        ("escalation", lambda: deadlines.scan(app.services)),
        ("digest", lambda: digest.send_digests(app.services)),
        ("reminders", lambda: reminders(app)),
        ("broadcasts", lambda: broadcasts(app)),
    )
    for name, job in jobs:
        try:
            await job()
        except Exception as exc:  # the demo goes on; the operator sees what failed
            log.error("demo job %s failed: %s", name, type(exc).__name__)
