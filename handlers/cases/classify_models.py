"""Labelled examples the classifier can learn from: what residents chose when the bot asked them, and
what staff corrected (改类, or a triage assignment that set the category).

Kept apart from the case tables because these rows outlive the question that produced them and are
exported as training data (``outreach-bot classify corrections``). The text is stored as the resident
wrote it (a case already keeps it); every export masks it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, UTCDateTime, utcnow


class ExampleSource(enum.StrEnum):
    RESIDENT = "resident"  # the resident answered "which kind of problem is it?"
    RECLASSIFY = "reclassify"  # a leader or admin changed the case's category (改类)
    TRIAGE = "triage"  # an admin assigned a triaged case and named its category


class LabelledExample(Base):
    __tablename__ = "labelled_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), index=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: not a report
    previous: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the category it had
    urgent_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the danger, if any
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # staff id or resident id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
