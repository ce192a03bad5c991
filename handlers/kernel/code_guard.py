"""The limit on wrong one-time codes (guardian join codes ``加入 CODE``, staff invite codes ``绑定 CODE``).

An account that types ``MAX_FAILURES`` wrong codes within ``WINDOW`` is locked for ``LOCKOUT``: during
the lockout no code is checked at all, so even the right one is refused and a guess tells nothing. The
count is per chat account and shared by both kinds of code (alternating them buys nothing). Wrong
guesses never touch a real code: a family's join code stays valid however many strangers guess, only
the guessers are locked. Counted in the database (``code_guards``), so every process sees the same
count; the account's row is locked while its code is checked, so parallel guesses queue.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kernel.people import Address
from storage.attempt_models import CodeGuard

MAX_FAILURES = 5
WINDOW = timedelta(hours=1)
LOCKOUT = timedelta(hours=1)

# No 0/O or 1/I: codes are read out over the phone and typed by elderly residents.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LETTERS = "".join(c for c in ALPHABET if c.isalpha())
CODE_LENGTH = 8  # 32^8 ≈ 1.1e12 codes: at 5 guesses an hour an account would need ~25,000 years per code


def new_code() -> str:
    """A random code of ``CODE_LENGTH`` characters with at least one letter, so that it is never taken
    for a case number or an old all-digit code."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if any(c in LETTERS for c in code):
            return code


def normalise(code: str) -> str:
    return code.strip().upper()


async def _row(session: AsyncSession, address: Address) -> CodeGuard:
    """The account's row, created if missing and locked (FOR UPDATE on PostgreSQL; SQLite's turns already
    hold the write lock from their first statement)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    await session.execute(
        dialect.insert(CodeGuard)
        .values(channel=address.channel, external_id=address.recipient, failures=0)
        .on_conflict_do_nothing()
    )
    return await session.get_one(
        CodeGuard, (address.channel, address.recipient), with_for_update=True, populate_existing=True
    )


async def locked_until(session: AsyncSession, address: Address, now: datetime) -> datetime | None:
    """When the account's lockout ends, if it is locked now; call before checking a code."""
    row = await _row(session, address)
    if row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


async def record_failure(session: AsyncSession, address: Address, now: datetime) -> datetime | None:
    """Count one wrong code; when the lockout this failure starts ends, if it starts one."""
    row = await _row(session, address)
    if row.window_start is None or now - row.window_start >= WINDOW:
        row.window_start, row.failures = now, 0
    row.failures += 1
    if row.failures < MAX_FAILURES:
        return None
    row.locked_until, row.window_start, row.failures = now + LOCKOUT, None, 0
    return row.locked_until
