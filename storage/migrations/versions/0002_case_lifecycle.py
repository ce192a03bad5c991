"""case lifecycle: time limits and escalation, duplicates and followers, ratings, staff invites

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("time_limit_hours", sa.Float(), nullable=True))
        batch.add_column(sa.Column("clock_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("alarm_stage", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_alarm_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("referral", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("rating", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_cases_next_alarm_at", ["next_alarm_at"])
        batch.create_foreign_key("fk_cases_duplicate_of_cases", "cases", ["duplicate_of"], ["id"])
    op.create_table(
        "case_followers",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_followers_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_case_followers_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("case_id", "channel", "external_id", name=op.f("pk_case_followers")),
    )
    op.create_table(
        "staff_invites",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.String(length=160), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_invites_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_staff_invites")),
    )
    op.create_index(op.f("ix_staff_invites_staff_id"), "staff_invites", ["staff_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_invites_staff_id"), table_name="staff_invites")
    op.drop_table("staff_invites")
    op.drop_table("case_followers")
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("fk_cases_duplicate_of_cases", type_="foreignkey")
        batch.drop_index("ix_cases_next_alarm_at")
        for column in (
            "reopen_count",
            "rating",
            "referral",
            "close_reason",
            "duplicate_of",
            "next_alarm_at",
            "alarm_stage",
            "due_at",
            "time_limit_hours",
            "urgent",
        ):
            batch.drop_column(column)
