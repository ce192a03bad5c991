"""outbox: the delivery method (direct / mass) instead of the "wechat_mass" pseudo-channel

WeChat mass-send rows (群发, broadcasts to users outside the 48-hour window) were stored on a channel
named "wechat_mass". They are WeChat's rows: ``channel`` becomes "wechat" and the new ``method`` column
says "mass" (every other row: "direct"). The claim's partial index gains the method, so the ordinary
WeChat drain and the mass-send loop each walk only their own rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sa.String(length=16), nullable=False, server_default="direct")
        )
    op.execute("UPDATE outbox SET channel = 'wechat', method = 'mass' WHERE channel = 'wechat_mass'")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["channel", "method", sa.literal_column("priority").desc(), "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.execute("UPDATE outbox SET channel = 'wechat_mass' WHERE channel = 'wechat' AND method = 'mass'")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("method")
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["channel", sa.literal_column("priority").desc(), "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
