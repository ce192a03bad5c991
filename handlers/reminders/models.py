"""Tables of the reminders feature: consents, children and their guardians, dose records, follow-up
enrolments and records, and the reminders themselves (the durable schedule the periodic job reads).

Health data and data on children are sensitive personal information (PIPL Art 28): these tables hold
the minimum scheduling needs. A child is a nickname and a birth date (sex only if a schedule row needs
it); a follow-up is a programme code, dates, the method and a result category: no readings, no
diagnosis text, no medication. Nothing is stored before the consent it depends on.
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
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, UTCDateTime, utcnow


class Programme(enum.StrEnum):
    CHILD_VACCINATION = "child_vaccination"
    HYPERTENSION = "hypertension"
    DIABETES_T2 = "diabetes_t2"
    SEVERE_MENTAL = "severe_mental"
    ELDERLY_65 = "elderly_65"
    PREGNANCY = "pregnancy"


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"  # only inside the job's transaction: a crash rolls it back to pending
    SENT = "sent"  # its outbox rows are written (same transaction)
    CANCELLED = "cancelled"  # dose recorded, opted out, stale, postponed past it …


class ReminderKind(enum.StrEnum):
    VACCINE = "vaccine"  # a child's doses due on one date
    FOLLOWUP = "followup"  # a follow-up enrolment's next visit


class EnrolmentStatus(enum.StrEnum):
    AWAITING_CONSENT = "awaiting_consent"
    ACTIVE = "active"
    ENDED = "ended"


class Consent(Base):
    """One explicit consent (PIPL Art 29 单独同意): who gave it, for which programme, to which text
    version, on which channel and when; ``withdrawn_at`` once withdrawn (退订). Kept after withdrawal as
    the record that processing had a basis; it names no child and no diagnosis."""

    __tablename__ = "rem_consents"
    __table_args__ = (Index("ix_rem_consents_resident", "resident_id", "programme"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    programme: Mapped[str] = mapped_column(String(24))
    text_version: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))  # the chat channel, or "written" (paper form)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # staff id for "written"
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Child(Base):
    __tablename__ = "rem_children"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nickname: Mapped[str] = mapped_column(String(20))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)  # F/M, only if a schedule row needs it
    schedule: Mapped[str | None] = mapped_column(String(32), nullable=True)  # NULL: the version in force
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The code the first guardian passes on so that a second guardian can join (8 characters, 7 days;
    # codes from before migration 0006 are 8 digits). Kept readable: 我的孩子 shows it again.
    join_code: Mapped[str | None] = mapped_column(String(12), nullable=True, unique=True)
    join_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Guardianship(Base):
    """A resident following a child's vaccinations (at most two per child), under their own consent."""

    __tablename__ = "rem_guardians"

    child_id: Mapped[int] = mapped_column(ForeignKey("rem_children.id", ondelete="CASCADE"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    consent_id: Mapped[int] = mapped_column(ForeignKey("rem_consents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DoseRecord(Base):
    __tablename__ = "rem_doses"
    __table_args__ = (
        UniqueConstraint("child_id", "vaccine", "dose", name="uq_rem_doses_child_vaccine_dose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("rem_children.id", ondelete="CASCADE"), index=True)
    vaccine: Mapped[str] = mapped_column(String(16))  # schedule code: HepB, DTaP, JE-L …
    dose: Mapped[int] = mapped_column(Integer)
    given_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16), default="guardian")  # guardian / staff / import
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FollowupEnrolment(Base):
    """A resident in a follow-up programme, enrolled by health staff. ``recipient_id`` is who is
    reminded: the resident, or a family contact (severe mental disorders)."""

    __tablename__ = "rem_followups"
    __table_args__ = (
        Index("ix_rem_followups_recipient", "recipient_id", "status"),
        Index("ix_rem_followups_status_due", "status", "next_due"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    programme: Mapped[str] = mapped_column(String(24))
    interval_days: Mapped[int] = mapped_column(Integer)
    anchor_date: Mapped[date | None] = mapped_column(Date, nullable=True)  # pregnancy: 末次月经
    next_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default=EnrolmentStatus.AWAITING_CONSENT)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("rem_consents.id"), nullable=True)
    enrolled_by: Mapped[str] = mapped_column(String(64))  # staff id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FollowupRecord(Base):
    __tablename__ = "rem_followup_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("rem_followups.id", ondelete="CASCADE"), index=True)
    done_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(8))  # phone / home / clinic (电话/上门/门诊)
    result: Mapped[str] = mapped_column(String(20))  # controlled / uncontrolled / stable / …
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reminder(Base):
    """One message to send at ``due_at`` (UTC). The periodic job reads only (status, due_at), so a day's
    work costs the same with a million children enrolled. ``key`` makes planning idempotent (one row per
    child, date and offset); the outbox row's dedup key (``rem:{id}:{resident}``) makes sending so."""

    __tablename__ = "rem_reminders"
    __table_args__ = (
        Index("ix_rem_reminders_status_due", "status", "due_at"),
        UniqueConstraint("key", name="uq_rem_reminders_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    child_id: Mapped[int | None] = mapped_column(
        ForeignKey("rem_children.id", ondelete="CASCADE"), nullable=True, index=True
    )
    followup_id: Mapped[int | None] = mapped_column(
        ForeignKey("rem_followups.id", ondelete="CASCADE"), nullable=True, index=True
    )
    for_date: Mapped[date] = mapped_column(Date)  # the date the doses / the visit are due
    offset_days: Mapped[int] = mapped_column(Integer)  # -7, -1: before; 0: the day; 7, 30: overdue
    postponed: Mapped[bool] = mapped_column(Boolean, default=False)  # made by "推迟": re-planning keeps it
    doses: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [["DTaP", 3], ["HepB", 3]]
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # stale after this
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PENDING)
    key: Mapped[str] = mapped_column(String(120))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(24), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
