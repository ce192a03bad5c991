"""The periodic jobs the server runs (escalation scans, reminders, digests …). Each must be safe to run
in several processes at once: it claims its work in the database, never in memory."""

from __future__ import annotations

from collections.abc import Sequence

from bot.server import PeriodicJob


def default_jobs() -> Sequence[PeriodicJob]:
    return ()
