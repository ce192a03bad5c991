"""Who is writing: a bound staff member, or a resident (created on first contact)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kernel.inbound import Inbound
from storage.models import Resident, ResidentIdentity, Role, Staff, StaffIdentity


@dataclass(frozen=True)
class Address:
    """Where to send a message: one account on one channel."""

    channel: str
    recipient: str


@dataclass
class Actor:
    address: Address
    staff: Staff | None = None
    resident: Resident | None = None

    @property
    def is_staff(self) -> bool:
        return self.staff is not None

    @property
    def role(self) -> Role | None:
        return Role(self.staff.role) if self.staff is not None else None


async def identify(session: AsyncSession, message: Inbound, now: datetime) -> Actor:
    address = Address(message.channel, message.sender)
    staff = await session.scalar(
        select(Staff)
        .join(StaffIdentity, StaffIdentity.staff_id == Staff.id)
        .where(
            StaffIdentity.channel == message.channel,
            StaffIdentity.external_id == message.sender,
            Staff.active.is_(True),
        )
    )
    if staff is not None:
        bound = await session.get(StaffIdentity, (message.channel, message.sender))
        if bound is not None:
            bound.unreachable_since = None  # they wrote to us, so they can be reached again
        return Actor(address, staff=staff)
    identity = await session.get(ResidentIdentity, (message.channel, message.sender))
    if identity is None:
        resident = Resident(display_name=message.sender_name, created_at=now)
        session.add(resident)
        await session.flush()
        identity = ResidentIdentity(
            channel=message.channel, external_id=message.sender, resident_id=resident.id, created_at=now
        )
        session.add(identity)
    else:
        resident = await session.get_one(Resident, identity.resident_id)
    identity.last_inbound_at = now
    identity.unreachable_since = None  # they wrote to us, so they can be reached again
    return Actor(address, resident=resident)


async def staff_addresses_of(
    session: AsyncSession, staff_ids: Iterable[str], channels: frozenset[str]
) -> dict[str, list[Address]]:
    """``staff_addresses`` of several staff members in a few queries (an entry for every id given)."""
    ids = sorted(set(staff_ids))
    found: dict[str, list[Address]] = {staff_id: [] for staff_id in ids}
    for start in range(0, len(ids), 500):
        rows = await session.scalars(
            select(StaffIdentity)
            .where(StaffIdentity.staff_id.in_(ids[start : start + 500]), StaffIdentity.channel.in_(channels))
            .order_by(StaffIdentity.staff_id, StaffIdentity.channel)
        )
        for r in rows:
            found[r.staff_id].append(Address(r.channel, r.external_id))
    return found


async def staff_addresses(session: AsyncSession, staff_id: str, channels: frozenset[str]) -> list[Address]:
    """The accounts a staff member can be reached on, among the channels this process runs."""
    rows = await session.scalars(
        select(StaffIdentity)
        .where(StaffIdentity.staff_id == staff_id, StaffIdentity.channel.in_(channels))
        .order_by(StaffIdentity.channel)
    )
    return [Address(r.channel, r.external_id) for r in rows]
