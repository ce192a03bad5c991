"""Tables of the broadcasts feature (Alembic branch ``broadcasts``, ``versions/0401_broadcasts.py``).

* ``broadcasts``: one notice to many people: its text, audience (grids and tags, never a list of people),
  who made it and how (cli / chat / calendar), its state and its final report. The messages themselves
  are outbox rows whose dedup key is ``bc:{broadcast}:r{resident}`` (``s{staff}`` for staff), so a
  resident can hold one row per broadcast whatever channel they use; the report is computed from them.
* ``notice_opt_outs``: residents who replied 退订通知 (case updates and reminders are unaffected).
* ``resident_tags``: free tags admins give residents (``outreach-bot broadcast --tag volunteers``).
* ``calendar_drafts``: the notice drafted for one outreach-calendar entry in one year (made once).
* ``wechat_mass_receipts``: WeChat mass sends (群发) each user received per calendar month (≤4 on a 服务号).

An index on ``outbox.dedup_key`` for the broadcast rows (``LIKE 'bc:%'``, pattern ops on PostgreSQL)
lets a broadcast's rows be counted without scanning the outbox.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, OutboxMessage, UTCDateTime, utcnow


class BroadcastStatus(enum.StrEnum):
    DRAFT = "draft"  # made in the chat, waiting for the admin's 确认发送
    AWAITING_APPROVAL = "awaiting_approval"  # drafted from the calendar, waiting for 批准 / 修改 / 跳过
    SCHEDULED = "scheduled"  # confirmed; goes out at scheduled_at
    SENDING = "sending"  # outbox rows being written (until expanded_at) and delivered
    DONE = "done"  # every row settled; report written
    CANCELLED = "cancelled"


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_scheduled", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # {"grids": ["G1"], "tags": ["guardians"]}; both empty: every resident
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))  # staff id, or "cli"
    source: Mapped[str] = mapped_column(String(16))  # cli / chat / calendar
    status: Mapped[str] = mapped_column(String(20), default=BroadcastStatus.DRAFT)
    # Where progress and the report go (the admin's chat account), when made or approved in a chat.
    notify_channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    notify_recipient: Mapped[str | None] = mapped_column(String(128), nullable=True)
    wechat_mass: Mapped[bool] = mapped_column(Boolean, default=False)  # WeChat users outside the window: 群发
    estimate: Mapped[int | None] = mapped_column(
        Integer, nullable=True
    )  # audience size shown at confirmation
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Expansion into outbox rows: resumable (the cursor is the last resident id written), leased so one
    # process at a time does it; expanded_at once every row is written.
    expand_cursor: Mapped[int] = mapped_column(Integer, default=0)
    expand_lease: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expanded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # {"total", "sent", "failed", "pending", "by_reason": {...}, "by_channel": {...}, "opted_out", …}
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NoticeOptOut(Base):
    __tablename__ = "notice_opt_outs"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResidentTag(Base):
    __tablename__ = "resident_tags"
    __table_args__ = (Index("ix_resident_tags_tag", "tag", "resident_id"),)

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CalendarDraftStatus(enum.StrEnum):
    AWAITING = "awaiting"
    APPROVED = "approved"
    SKIPPED = "skipped"


class CalendarDraft(Base):
    __tablename__ = "calendar_drafts"
    __table_args__ = (UniqueConstraint("key", "year", name="uq_calendar_drafts_key_year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer)
    event_date: Mapped[date] = mapped_column(Date)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=CalendarDraftStatus.AWAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WeChatMassReceipt(Base):
    __tablename__ = "wechat_mass_receipts"

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11", Beijing time
    count: Mapped[int] = mapped_column(Integer, default=0)


# The broadcast rows of the outbox, found by dedup-key prefix. PostgreSQL needs pattern ops for a LIKE
# prefix to use an index under a non-C collation; SQLite uses the unique index on dedup_key for a range.
OUTBOX_BROADCAST_KEY = Index(
    "ix_outbox_broadcast_key",
    OutboxMessage.dedup_key,
    postgresql_ops={"dedup_key": "text_pattern_ops"},
    postgresql_where=text("dedup_key LIKE 'bc:%'"),
    sqlite_where=text("dedup_key LIKE 'bc:%'"),
)
