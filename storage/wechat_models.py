"""Tables of the WeChat channel (Official Account and WeCom): the shared access token, what we know of
each WeChat user (their 48-hour window, last position, subscription opt-ins), and the record of
messages that could not be delivered, for the admins.

On their own Alembic branch (``storage/migrations/versions/0101_wechat.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, UTCDateTime, utcnow


class WeChatInbox(Base):
    """Every callback accepted, stored before WeChat gets its answer and handled after (inline when the
    server is idle, by the inbox worker otherwise). ``key`` spots WeChat's retries at the door: MsgId,
    or FromUserName:CreateTime:Event for events."""

    __tablename__ = "wechat_inbox"
    __table_args__ = (
        UniqueConstraint("channel", "key", name="uq_wechat_inbox_channel_key"),
        Index("ix_wechat_inbox_due", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    openid: Mapped[str] = mapped_column(String(128))
    xml: Mapped[str] = mapped_column(Text)  # the (decrypted) message, already checked
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / done / failed
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class WeChatCallbackSeal(Base):
    """A callback's (signature, timestamp, nonce), bound to the SHA-256 of the body it first came with.

    WeChat's plain signature covers only the token, timestamp and nonce, so a signature seen once (in a
    log, on the wire) would vouch for any body. Every process checks and records it here, in the same
    transaction as the message: the same body again is a retry, another body is refused. Rows are
    purged once the timestamp is outside the accepted window (``expires_at``). Added by 0102."""

    __tablename__ = "wechat_callback_seals"
    __table_args__ = (Index("ix_wechat_callback_seals_expires", "expires_at"),)

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WeChatToken(Base):
    """One access token per app (Official Account app id, or WeCom corp id + agent), shared by every
    process. ``refreshing_until`` is a lease: the process that sets it (compare-and-set) refreshes, the
    others wait for the new token."""

    __tablename__ = "wechat_tokens"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refreshing_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WeChatUser(Base):
    """What the channel knows about one openid: when they last wrote (the customer-service window and
    its per-message quota), whether they unfollowed, and their last reported position."""

    __tablename__ = "wechat_users"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # "message" (48 h, 5 messages) or "event" (subscribe/menu/scan: 1 minute, 3 messages)
    window_kind: Mapped[str] = mapped_column(String(16), default="message")
    cs_sent: Mapped[int] = mapped_column(Integer, default=0)  # customer-service messages since then
    window_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # 45015/45047
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    located_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WeChatSubscription(Base):
    """A user's answer to a 订阅通知 popup for one template ("accept" / "reject")."""

    __tablename__ = "wechat_subscriptions"

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WeChatUnreached(Base):
    """A message that could not be delivered by any allowed path: shown to admins
    (``outreach-bot wechat unreached``) so someone can phone or visit."""

    __tablename__ = "wechat_unreached"
    __table_args__ = (Index("ix_wechat_unreached_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    openid: Mapped[str] = mapped_column(String(128))
    outbox_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))  # window_closed, quota, unsubscribed, errcode_43004 …
    text: Mapped[str] = mapped_column(Text)


class WeChatQrCode(Base):
    """A permanent parametric QR code (``QR_LIMIT_STR_SCENE``) created for a building's scene, kept so
    that each scene is created once per account (WeChat caps permanent codes at 100,000). Added by 0103."""

    __tablename__ = "wechat_qrcodes"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scene: Mapped[str] = mapped_column(String(64), primary_key=True)
    ticket: Mapped[str] = mapped_column(String(512))
    url: Mapped[str] = mapped_column(String(512))  # what the code encodes (http://weixin.qq.com/q/…)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
