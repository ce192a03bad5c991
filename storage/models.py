"""The shared core of the database schema: community model, people, inbound log and outbox, on the one
``Base`` every model module adds its tables to (the features' own tables, the cases' among them, are
in their packages: ``storage/model_registry.py`` lists them all).

Conventions: times are stored in UTC (``UTCDateTime`` makes SQLite hand them back timezone-aware too);
enumerations are stored as short strings so a new state is a code change, not a type migration; lists
from the community YAML are JSON columns because nothing queries inside them.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    WORKER = "worker"
    LEADER = "leader"
    ADMIN = "admin"
    HEALTH = "health"  # 卫生服务站 staff and family doctors: follow-up programmes (reminders feature)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Street(Base):
    """The 街道 (or district) the deployment serves: one row, written when a file is loaded. A
    single-community file is a street of one (``single_file``)."""

    __tablename__ = "street"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    admins: Mapped[list[str]] = mapped_column(JSON, default=list)  # 街道-level staff ids
    single_file: Mapped[bool] = mapped_column(Boolean, default=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Community(Base):
    __tablename__ = "community"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The short code of case numbers (HPL-12); "C1" for a single community that names none.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A community that left the 街道 file: kept (its cases point at it), no longer served.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    name: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the YAML as loaded


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # in at least one community


class StaffMembership(Base):
    """A staff member works in a community (staff ids are global: one person, several communities)."""

    __tablename__ = "staff_communities"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffIdentity(Base):
    """A chat account bound to a staff member (from the config, or later by invite code)."""

    __tablename__ = "staff_identities"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="config")
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Grid(Base):
    """A grid of one community: its code is unique within the community, not across them."""

    __tablename__ = "grids"

    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    leader_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    buildings: Mapped[list[str]] = mapped_column(JSON, default=list)
    places: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class GridWorker(Base):
    __tablename__ = "grid_workers"
    __table_args__ = (
        ForeignKeyConstraint(
            ["community_id", "grid_code"],
            ["grids.community_id", "grids.code"],
            name="fk_grid_workers_grid_grids",
            ondelete="CASCADE",
        ),
    )

    community_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Category(Base):
    __tablename__ = "categories"

    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    time_limit_hours: Mapped[float] = mapped_column(Float, default=8.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where they live, as they told us (住址 3号楼): the grid their notices go by. A plain code, not a
    # foreign key: a grid that leaves the community file is marked inactive, never deleted.
    home_building: Mapped[str | None] = mapped_column(String(32), nullable=True)
    home_grid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The community they are in (named, chosen when asked, or from their reports), remembered.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), nullable=True)


class ResidentIdentity(Base):
    __tablename__ = "resident_identities"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when the platform says the user blocked the bot or cannot be reached; cleared on their next message.
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StaffInvite(Base):
    """A one-time code that binds a chat account to a staff id. Only a hash of the code is kept."""

    __tablename__ = "staff_invites"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(160), nullable=True)


class InboundMessage(Base):
    """Every message received, stored before it is handled; (channel, external_id) spots redeliveries."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_inbound_channel_external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sender: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    photo: Mapped[str | None] = mapped_column(String(512), nullable=True)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="handled")  # handled / failed
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class OutboxMessage(Base):
    """Every outbound message. Written in the same transaction as the change it reports, sent after commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "channel", "not_before"),
        UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), default="reply")
    # "direct", or "mass": delivered in the channel's mass send (WeChat 群发), claimed by its own loop.
    method: Mapped[str] = mapped_column(String(16), default="direct", server_default="direct")
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True, index=True)
    # One message per (purpose, recipient) where it must never go twice (a broadcast, a reminder).
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first: replies before bulk
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the claim's token
    # Set (and committed) just before the request that delivers the row leaves for the platform: a
    # row still "sending" with this set when its lease lapses may or may not have been delivered.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Set at the first failed send: retried until then, failed as unreached after (handlers/kernel/outbox.py).
    give_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# The claim's order (priority, then age) among pending rows of one channel and delivery method only:
# a backlog of sent rows or a 100,000-row broadcast does not make each claim sort the whole channel.
Index(
    "ix_outbox_pending",
    OutboxMessage.channel,
    OutboxMessage.method,
    OutboxMessage.priority.desc(),
    OutboxMessage.id,
    postgresql_where=text("status = 'pending'"),
    sqlite_where=text("status = 'pending'"),
)


class Dialog(Base):
    """A short conversation waiting for the user's next message (e.g. "where is it?")."""

    __tablename__ = "dialogs"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
