"""labelled examples: residents' answers to "which kind of problem?" and staff corrections

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "labelled_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("previous", sa.String(length=32), nullable=True),
        sa.Column("urgent_kind", sa.String(length=16), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_labelled_examples_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labelled_examples")),
    )
    op.create_index(
        op.f("ix_labelled_examples_created_at"), "labelled_examples", ["created_at"], unique=False
    )
    op.create_index(op.f("ix_labelled_examples_source"), "labelled_examples", ["source"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_labelled_examples_source"), table_name="labelled_examples")
    op.drop_index(op.f("ix_labelled_examples_created_at"), table_name="labelled_examples")
    op.drop_table("labelled_examples")
