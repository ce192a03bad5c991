"""Binding a chat account to a staff id with a one-time invite code (``outreach-bot staff invite ID``).
Only a hash of the code is stored; a code works once and expires."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.people import Address
from storage.models import Staff, StaffIdentity, StaffInvite

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: codes are read out and typed
CODE_LENGTH = 8
DEFAULT_VALID = timedelta(days=7)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def create_invite(
    session: AsyncSession, staff_id: str, now: datetime, valid: timedelta = DEFAULT_VALID
) -> str:
    if await session.get(Staff, staff_id) is None:
        raise KeyError(staff_id)
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    session.add(StaffInvite(code_hash=_hash(code), staff_id=staff_id, created_at=now, expires_at=now + valid))
    return code


async def redeem(session: AsyncSession, code: str, address: Address, now: datetime) -> Staff | None:
    """Bind ``address`` to the invite's staff member; None for an unknown, used or expired code."""
    invite = await session.get(StaffInvite, _hash(code), with_for_update=True)
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    staff = await session.get(Staff, invite.staff_id)
    if staff is None or not staff.active:
        return None
    invite.used_at = now
    invite.used_by = f"{address.channel}:{address.recipient}"
    identity = await session.get(StaffIdentity, (address.channel, address.recipient))
    if identity is None:
        session.add(
            StaffIdentity(
                channel=address.channel, external_id=address.recipient, staff_id=staff.id, source="invite"
            )
        )
    else:
        identity.staff_id, identity.source, identity.unreachable_since = staff.id, "invite", None
    return staff
