"""A report sent on the Official Account that names no place takes the sender's last known position
(WeChat sends a LOCATION event when the user allows it, or the user sends a location message)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from handlers.kernel.inbound import Inbound

if TYPE_CHECKING:
    from handlers.community.model import Community
    from handlers.kernel.channel_state import WeChatUserState

POSITION_TTL = timedelta(minutes=30)  # a remembered position is used for reports this fresh


def with_position(
    inbound: Inbound, user: WeChatUserState | None, now: datetime, community: Community
) -> Inbound:
    """A report that names no place gets the user's position from the last half hour (a LOCATION
    event, or a location message whose label names a place the community knows)."""
    if user is None or user.located_at is None or now - user.located_at > POSITION_TTL:
        return inbound
    text = (inbound.text or "").strip()
    if not text or community.classifier.classify(text).is_report is False:
        return inbound
    if community.locator.locate(text) is not None:
        return inbound
    label = user.location_label
    if label and community.locator.locate(label) is not None:
        text = f"{text}（{label}）"
    return Inbound(
        inbound.channel,
        inbound.sender,
        text=text,
        latitude=user.latitude,
        longitude=user.longitude,
        message_id=inbound.message_id,
    )
