"""broadcasts: broadcasts, notice opt-outs, resident tags, calendar drafts, WeChat mass-send receipts

Revision ID: 0401
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0401"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("broadcasts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo", sa.String(length=512), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("notify_channel", sa.String(length=16), nullable=True),
        sa.Column("notify_recipient", sa.String(length=128), nullable=True),
        sa.Column("wechat_mass", sa.Boolean(), nullable=False),
        sa.Column("estimate", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expand_cursor", sa.Integer(), nullable=False),
        sa.Column("expand_lease", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expanded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_progress_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index("ix_broadcasts_status_scheduled", "broadcasts", ["status", "scheduled_at"])
    op.create_table(
        "notice_opt_outs",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_notice_opt_outs_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_notice_opt_outs")),
    )
    op.create_table(
        "resident_tags",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_resident_tags_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "tag", name=op.f("pk_resident_tags")),
    )
    op.create_index("ix_resident_tags_tag", "resident_tags", ["tag", "resident_id"])
    op.create_table(
        "calendar_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_calendar_drafts_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_drafts")),
        sa.UniqueConstraint("key", "year", name="uq_calendar_drafts_key_year"),
    )
    op.create_table(
        "wechat_mass_receipts",
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("openid", "month", name=op.f("pk_wechat_mass_receipts")),
    )
    op.create_index(
        "ix_outbox_broadcast_key",
        "outbox",
        ["dedup_key"],
        postgresql_ops={"dedup_key": "text_pattern_ops"},
        postgresql_where=sa.text("dedup_key LIKE 'bc:%'"),
        sqlite_where=sa.text("dedup_key LIKE 'bc:%'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_broadcast_key", table_name="outbox")
    op.drop_table("wechat_mass_receipts")
    op.drop_table("calendar_drafts")
    op.drop_index("ix_resident_tags_tag", table_name="resident_tags")
    op.drop_table("resident_tags")
    op.drop_table("notice_opt_outs")
    op.drop_index("ix_broadcasts_status_scheduled", table_name="broadcasts")
    op.drop_table("broadcasts")
