"""The periodic jobs the server runs (escalation scans, reminders, digests …). Each must be safe to run
in several processes at once: it claims its work in the database, never in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.app import App
from bot.settings import Settings
from handlers.cases import deadlines, digest

ESCALATION_SECONDS = 60
DIGEST_SECONDS = 60


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    seconds: float
    run: Callable[[App], Awaitable[object]]


async def escalate(app: App) -> None:
    await deadlines.scan(app.services)


async def digests(app: App) -> None:
    await digest.send_digests(app.services)


def default_jobs(settings: Settings) -> Sequence[PeriodicJob]:
    from handlers.broadcasts.jobs import BroadcastsJob
    from handlers.reminders.jobs import run_job as send_reminders

    return (
        PeriodicJob("escalation", ESCALATION_SECONDS, escalate),
        PeriodicJob("digest", DIGEST_SECONDS, digests),
        PeriodicJob("reminders", settings.reminders.job_seconds, send_reminders),
        PeriodicJob("broadcasts", settings.broadcasts.job_seconds, BroadcastsJob()),
    )
