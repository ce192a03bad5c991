"""case events: the index by case carries the columns statistics read (PostgreSQL ``INCLUDE``)

The reporters' ratings of a period's cases (``handlers.cases.stats``: 满意 and 不满意 events joined to
the cases received in the period) were read by a full scan of the event log: with every case's events
in it (10 million cases, 13 million events for a district of 300 communities) the planner preferred
hashing the whole log to looking each case up. With ``action``, ``actor_type`` and ``at`` in the index
the look-ups are index-only and the planner takes them: a district's month at 1 million cases, 0.49 s
→ 0.07 s (bench/district_scale.py). The new index replaces ``ix_case_events_case_id`` (same leading
column: a case's events, the foreign key's look-ups). SQLite has no ``INCLUDE``: there it is the same
index on ``case_id`` under its new name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_case_events_case",
        "case_events",
        ["case_id"],
        unique=False,
        postgresql_include=["action", "actor_type", "at"],
    )
    op.drop_index("ix_case_events_case_id", table_name="case_events")


def downgrade() -> None:
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"], unique=False)
    op.drop_index("ix_case_events_case", table_name="case_events")
