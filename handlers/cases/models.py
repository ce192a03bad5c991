"""The cases' tables: a case, its append-only event log, and the residents who follow it; with the
states a case moves through and who acts on it.

They live on the shared ``storage.models.Base`` with the core tables (the inbound log and the outbox
refer to a case by the string key ``"cases.id"``); ``storage/model_registry.py`` names this module so
that Alembic and a database created from the models always have them. Table names are unchanged, so
moving them here needed no migration.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, UTCDateTime, utcnow


class CaseStatus(enum.StrEnum):
    NEW = "new"  # stored, not routed yet (waiting for a location, or in the admins' triage queue)
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"  # fixed, waiting for the reporter's confirmation
    CLOSED = "closed"  # closed without a fix (not ours, duplicate, invalid)
    CONFIRMED = "confirmed"  # the reporter (or time) confirmed the fix


OPEN_STATUSES: tuple[CaseStatus, ...] = (
    CaseStatus.NEW,
    CaseStatus.ASSIGNED,
    CaseStatus.ACCEPTED,
    CaseStatus.IN_PROGRESS,
)


class ActorType(enum.StrEnum):
    RESIDENT = "resident"
    STAFF = "staff"
    SYSTEM = "system"


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_grid", "status", "grid_code"),
        Index("ix_cases_assignee_status", "assignee_id", "status"),
        Index("ix_cases_reporter", "reporter_id", "created_at"),
        # Statistics range over periods of creation and resolution.
        Index("ix_cases_created_at", "created_at"),
        Index("ix_cases_resolved_at", "resolved_at"),
        # Per community: a case by its number (HPL-12), status lists, statistics over a period.
        Index("uq_cases_community_number", "community_id", "number", unique=True),
        Index("ix_cases_community_status", "community_id", "status", "grid_code"),
        Index("ix_cases_community_created", "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The community the case is in, and its number there (shown as HPL-12 when the deployment has
    # several communities, 12 when it has one). Cases from before 0010: number = id.
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), nullable=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.NEW)
    category_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    text: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(512), nullable=True)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_text: Mapped[str | None] = mapped_column(String(200), nullable=True)
    building: Mapped[str | None] = mapped_column(String(32), nullable=True)
    place: Mapped[str | None] = mapped_column(String(100), nullable=True)
    grid_code: Mapped[str | None] = mapped_column(String(32), nullable=True)  # in the case's community
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    in_triage: Mapped[bool] = mapped_column(Boolean, default=False)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    time_limit_hours: Mapped[float | None] = mapped_column(Float, nullable=True)  # working hours
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The escalation ladder: warn the worker at 50 % of the limit, the leader at 100 %, the admins at
    # 3x. ``next_alarm_at`` is when the next rung is due (NULL once none is); the periodic scan reads
    # only this indexed column, so it costs the same with a million closed cases.
    alarm_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_alarm_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    close_reason: Mapped[str | None] = mapped_column(
        String(16), nullable=True
    )  # not_ours / duplicate / invalid
    referral: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rating: Mapped[str | None] = mapped_column(String(8), nullable=True)  # good / bad
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))  # where the reporter wrote from, and is answered
    reporter_external: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CaseFollower(Base):
    """Residents who reported the same problem and chose to follow the first case: all are told."""

    __tablename__ = "case_followers"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseEvent(Base):
    """Append-only: who did what to a case, when. Never updated or deleted by the application."""

    __tablename__ = "case_events"
    __table_args__ = (
        # A case's events; on PostgreSQL the columns statistics read come with them, so the reporters'
        # ratings of a period's cases are read from the index alone (0011: a district's month, 222,000
        # cases, 0.49 s → 0.07 s at 1 million cases; the planner chose a full scan of the log before).
        Index("ix_case_events_case", "case_id", postgresql_include=["action", "actor_type", "at"]),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
