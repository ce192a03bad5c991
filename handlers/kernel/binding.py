"""Binding a chat account to a staff id with a one-time invite code (``outreach-bot staff invite ID``).
Only a hash of the code is stored; a code works once and expires; wrong codes count towards the
account's lockout (``handlers.kernel.code_guard``)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kernel import code_guard
from handlers.kernel.clock import local_time
from handlers.kernel.context import Turn
from handlers.kernel.people import Address
from messages import render
from storage.models import Staff, StaffIdentity, StaffInvite

ALPHABET = code_guard.ALPHABET
CODE_LENGTH = code_guard.CODE_LENGTH
DEFAULT_VALID = timedelta(days=7)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def create_invite(
    session: AsyncSession, staff_id: str, now: datetime, valid: timedelta = DEFAULT_VALID
) -> str:
    if await session.get(Staff, staff_id) is None:
        raise KeyError(staff_id)
    code = code_guard.new_code()
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


async def answer(turn: Turn, code: str, address: Address) -> str:
    """``绑定 CODE`` from a chat account: bind it, or say why not (wrong or expired code, or too many
    wrong codes: then until when no code is checked)."""
    session, now = turn.session, turn.now
    if not code.strip():
        return render("binding.ask_code")
    until = await code_guard.locked_until(session, address, now)
    if until is not None:
        return render("code.locked", until=local_time(turn.community, until))
    staff = await redeem(session, code, address, now)
    if staff is not None:
        return render("binding.ok", name=staff.name, role=render(f"role.{staff.role}"))
    until = await code_guard.record_failure(session, address, now)
    if until is None:
        return render("binding.failed")
    return render("binding.failed") + "\n" + render("code.locked", until=local_time(turn.community, until))
