"""wechat: callback seals (signature, timestamp, nonce bound to the body's SHA-256, shared by processes)

Revision ID: 0102
Revises: 0101
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102"
down_revision: str | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_callback_seals",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "channel", "signature", "timestamp", "nonce", name=op.f("pk_wechat_callback_seals")
        ),
    )
    op.create_index("ix_wechat_callback_seals_expires", "wechat_callback_seals", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_wechat_callback_seals_expires", table_name="wechat_callback_seals")
    op.drop_table("wechat_callback_seals")
