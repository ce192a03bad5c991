"""wechat: permanent parametric QR codes created for building and place scenes (created once each)

Revision ID: 0103
Revises: 0102
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0103"
down_revision: str | None = "0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_qrcodes",
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("ticket", sa.String(length=512), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "scene", name=op.f("pk_wechat_qrcodes")),
    )


def downgrade() -> None:
    op.drop_table("wechat_qrcodes")
