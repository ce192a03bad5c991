"""Wrong one-time codes per chat account (guardian join codes and staff invite codes), so that guessing
them is limited across every process sharing the database (``handlers/kernel/code_guard.py``).

Migration ``storage/migrations/versions/0006_code_attempts.py``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, UTCDateTime


class CodeGuard(Base):
    """One row per chat account that has typed a wrong code. The row is locked while a code is checked,
    so parallel guesses from one account are counted one after the other."""

    __tablename__ = "code_guards"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # Wrong codes since window_start (the first wrong code of the current hour).
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
