"""reminders: consents, children, guardians, doses, follow-ups, reminders

Revision ID: 0201
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0201"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("reminders",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rem_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("programme", sa.String(length=24), nullable=False),
        sa.Column("text_version", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_rem_consents_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_consents")),
    )
    op.create_index("ix_rem_consents_resident", "rem_consents", ["resident_id", "programme"])

    op.create_table(
        "rem_children",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nickname", sa.String(length=20), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("schedule", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("join_code", sa.String(length=12), nullable=True),
        sa.Column("join_code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_children")),
        sa.UniqueConstraint("join_code", name=op.f("uq_rem_children_join_code")),
    )

    op.create_table(
        "rem_guardians",
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["rem_children.id"],
            name=op.f("fk_rem_guardians_child_id_rem_children"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_rem_guardians_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["rem_consents.id"], name=op.f("fk_rem_guardians_consent_id_rem_consents")
        ),
        sa.PrimaryKeyConstraint("child_id", "resident_id", name=op.f("pk_rem_guardians")),
    )
    op.create_index(op.f("ix_rem_guardians_resident_id"), "rem_guardians", ["resident_id"])

    op.create_table(
        "rem_doses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("vaccine", sa.String(length=16), nullable=False),
        sa.Column("dose", sa.Integer(), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["rem_children.id"],
            name=op.f("fk_rem_doses_child_id_rem_children"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_doses")),
        sa.UniqueConstraint("child_id", "vaccine", "dose", name="uq_rem_doses_child_vaccine_dose"),
    )
    op.create_index(op.f("ix_rem_doses_child_id"), "rem_doses", ["child_id"])

    op.create_table(
        "rem_followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("programme", sa.String(length=24), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=True),
        sa.Column("next_due", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("enrolled_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_rem_followups_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["residents.id"],
            name=op.f("fk_rem_followups_recipient_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["rem_consents.id"], name=op.f("fk_rem_followups_consent_id_rem_consents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_followups")),
    )
    op.create_index(op.f("ix_rem_followups_resident_id"), "rem_followups", ["resident_id"])
    op.create_index("ix_rem_followups_recipient", "rem_followups", ["recipient_id", "status"])
    op.create_index("ix_rem_followups_status_due", "rem_followups", ["status", "next_due"])

    op.create_table(
        "rem_followup_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrolment_id", sa.Integer(), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["rem_followups.id"],
            name=op.f("fk_rem_followup_records_enrolment_id_rem_followups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_followup_records")),
    )
    op.create_index(op.f("ix_rem_followup_records_enrolment_id"), "rem_followup_records", ["enrolment_id"])

    op.create_table(
        "rem_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=True),
        sa.Column("followup_id", sa.Integer(), nullable=True),
        sa.Column("for_date", sa.Date(), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("postponed", sa.Boolean(), nullable=False),
        sa.Column("doses", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["rem_children.id"],
            name=op.f("fk_rem_reminders_child_id_rem_children"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["followup_id"],
            ["rem_followups.id"],
            name=op.f("fk_rem_reminders_followup_id_rem_followups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rem_reminders")),
        sa.UniqueConstraint("key", name="uq_rem_reminders_key"),
    )
    op.create_index("ix_rem_reminders_status_due", "rem_reminders", ["status", "due_at"])
    op.create_index(op.f("ix_rem_reminders_child_id"), "rem_reminders", ["child_id"])
    op.create_index(op.f("ix_rem_reminders_followup_id"), "rem_reminders", ["followup_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rem_reminders_followup_id"), table_name="rem_reminders")
    op.drop_index(op.f("ix_rem_reminders_child_id"), table_name="rem_reminders")
    op.drop_index("ix_rem_reminders_status_due", table_name="rem_reminders")
    op.drop_table("rem_reminders")
    op.drop_index(op.f("ix_rem_followup_records_enrolment_id"), table_name="rem_followup_records")
    op.drop_table("rem_followup_records")
    op.drop_index("ix_rem_followups_status_due", table_name="rem_followups")
    op.drop_index("ix_rem_followups_recipient", table_name="rem_followups")
    op.drop_index(op.f("ix_rem_followups_resident_id"), table_name="rem_followups")
    op.drop_table("rem_followups")
    op.drop_index(op.f("ix_rem_doses_child_id"), table_name="rem_doses")
    op.drop_table("rem_doses")
    op.drop_index(op.f("ix_rem_guardians_resident_id"), table_name="rem_guardians")
    op.drop_table("rem_guardians")
    op.drop_table("rem_children")
    op.drop_index("ix_rem_consents_resident", table_name="rem_consents")
    op.drop_table("rem_consents")
