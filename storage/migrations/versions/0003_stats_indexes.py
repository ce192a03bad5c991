"""statistics: indexes for period queries (cases created / resolved in a period, case events in a period)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_index("ix_cases_resolved_at", "cases", ["resolved_at"])
    op.create_index("ix_case_events_at", "case_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_case_events_at", table_name="case_events")
    op.drop_index("ix_cases_resolved_at", table_name="cases")
    op.drop_index("ix_cases_created_at", table_name="cases")
