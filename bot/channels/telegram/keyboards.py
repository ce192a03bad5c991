"""Inline keyboards from the outbox payload, and versioned callback data.

The core offers actions as ``{"label", "action"}`` buttons ("accept:12", "rate:12:good", …); this
module renders whatever it is given, one button per row pair, and writes each action as
``v1|<action>``. A button from an older or unknown format decodes to None, so after an upgrade an
old message's buttons are answered politely and do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit

from handlers.kernel.commands import ACTION_NUMBER

log = logging.getLogger(__name__)

VERSION = "v1"
_SEP = "|"
PER_ROW = 2
MAX_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes


def encode(action: str) -> str | None:
    data = f"{VERSION}{_SEP}{action}"
    if len(data.encode("utf-8")) > MAX_DATA:
        return None
    return data


def decode(data: str | None) -> str | None:
    """The action a button stands for, or None for data of another version or format."""
    if not data:
        return None
    version, sep, action = data.partition(_SEP)
    if not sep or version != VERSION or not action:
        return None
    return action


def case_number(action: str) -> int | None:
    """The case an action is about ("accept:12" → 12, "rate:12:good" → 12), if any."""
    parts = action.split(":")
    if len(parts) < 2 or ACTION_NUMBER.fullmatch(parts[1]) is None:
        return None  # the core's bounds: a forged 20-digit number is no number
    return int(parts[1])


def keyboard(buttons: Iterable[Mapping[str, Any]] | None) -> InlineKeyboardMarkup | None:
    """An inline keyboard for the payload's buttons (None when there are none)."""
    row: list[InlineKeyboardButton] = []
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons or ():
        label, action = str(button.get("label", "")), str(button.get("action", ""))
        data = encode(action)
        if not label or data is None:
            log.warning("button dropped: action %r does not fit in callback data", action[:80])
            continue
        row.append(InlineKeyboardButton(label, callback_data=data))
        if len(row) == PER_ROW:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return InlineKeyboardMarkup(rows) if rows else None


def without(markup: InlineKeyboardMarkup | None, data: str | None) -> InlineKeyboardMarkup | None:
    """The same keyboard minus the button carrying ``data`` (None when nothing is left)."""
    if markup is None:
        return None
    rows = [[b for b in row if b.callback_data != data] for row in markup.inline_keyboard]
    rows = [r for r in rows if r]
    return InlineKeyboardMarkup(rows) if rows else None
