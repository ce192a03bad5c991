"""wechat channel: inbox, shared access token, users (window, position), subscriptions, unreached

Revision ID: 0101
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0101"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("wechat",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_inbox")),
        sa.UniqueConstraint("channel", "key", name="uq_wechat_inbox_channel_key"),
    )
    op.create_index("ix_wechat_inbox_due", "wechat_inbox", ["status", "id"], unique=False)
    op.create_table(
        "wechat_tokens",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("access_token", sa.String(length=1024), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshing_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_wechat_tokens")),
    )
    op.create_table(
        "wechat_users",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_kind", sa.String(length=16), nullable=False),
        sa.Column("cs_sent", sa.Integer(), nullable=False),
        sa.Column("window_closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("location_label", sa.String(length=200), nullable=True),
        sa.Column("located_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("channel", "openid", name=op.f("pk_wechat_users")),
    )
    op.create_table(
        "wechat_subscriptions",
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("template_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("openid", "template_id", name=op.f("pk_wechat_subscriptions")),
    )
    op.create_table(
        "wechat_unreached",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_unreached")),
    )
    op.create_index("ix_wechat_unreached_at", "wechat_unreached", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_wechat_unreached_at", table_name="wechat_unreached")
    op.drop_table("wechat_unreached")
    op.drop_table("wechat_subscriptions")
    op.drop_table("wechat_users")
    op.drop_table("wechat_tokens")
    op.drop_index("ix_wechat_inbox_due", table_name="wechat_inbox")
    op.drop_table("wechat_inbox")
