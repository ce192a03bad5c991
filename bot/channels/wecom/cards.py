"""Case cards on WeCom: an outbox row with buttons as a ``button_interaction`` template card, and what a
click does to the card afterwards.

A card's ``task_id`` is ``ob{outbox id}_{random}``: unique per card (WeCom refuses a repeated one),
within WeCom's charset (``[A-Za-z0-9_-@]``, ≤128 bytes), and it leads a click back to the row the card
was built from, so the card can be rebuilt without storing it anywhere else. Each button's ``key`` is
the core's action string (``accept:12``), which is all a click needs.

After a click the card is updated the way the Telegram keyboard is (``bot/channels/telegram/handlers.py``): a
click that finished the case, or gave it to someone else, greys the whole card out with the outcome
(``button.replace_name``: "已处理", "已转派" …); one that moved it on but left it with the clicker
(接单) redraws the card without that button and with the new status; one that only asked something
(已处理 → "the note?") leaves it as it is. A click on a card whose case has since been finished greys
it out too.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.cases.button_state import OPEN_STATUSES
from messages import render

CARD_TYPE = "button_interaction"
TITLE_MAX = 26  # main_title.title, characters (WeCom's documented limit)
DESC_MAX = 30  # main_title.desc
SUBTITLE_MAX = 112  # sub_title_text
BUTTON_TEXT_MAX = 10
BUTTONS_MAX = 6
KEY_MAX = 1024  # bytes
TASK_ID_MAX = 128
TASK_ID_CHARS = re.compile(r"^[A-Za-z0-9_\-@]+$")
_TASK = re.compile(r"^ob(\d{1,18})_[0-9a-f]+$")

CaseState = tuple[str, str | None] | None  # (status, assignee) of a case; None when there is none


def cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def new_task_id(row_id: int) -> str:
    return f"ob{row_id}_{secrets.token_hex(6)}"


def row_of_task(task_id: str) -> int | None:
    match = _TASK.match(task_id or "")
    return int(match.group(1)) if match else None


def usable_buttons(buttons: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """The payload's buttons WeCom can show: a label, a key that fits, at most six, no repeated key."""
    usable: list[dict[str, str]] = []
    for button in buttons or ():
        label, key = str(button.get("label", "")).strip(), str(button.get("action", ""))
        if not label or not key or len(key.encode("utf-8")) > KEY_MAX:
            continue
        if any(b["key"] == key for b in usable):
            continue
        usable.append({"text": cut(label, BUTTON_TEXT_MAX), "key": key})
    return usable[:BUTTONS_MAX]


def card(text: str, buttons: list[dict[str, str]], task_id: str, status: str | None = None) -> dict[str, Any]:
    """The ``template_card`` for a message: its first line as the title when it fits, the rest below."""
    lines = text.strip().splitlines() or [""]
    first, rest = lines[0].strip(), "\n".join(lines[1:]).strip()
    if len(first) > TITLE_MAX or not first:
        title, body = cut(first or text, TITLE_MAX), text.strip()
    else:
        title, body = first, rest
    main_title: dict[str, str] = {"title": title}
    if status:
        main_title["desc"] = cut(render("wecom.card_status", status=status), DESC_MAX)
    template: dict[str, Any] = {
        "card_type": CARD_TYPE,
        "main_title": main_title,
        "task_id": task_id,
        "button_list": buttons,
    }
    if body:
        template["sub_title_text"] = cut(body, SUBTITLE_MAX)
    return template


def update_after_click(
    *,
    clicker: str | None,
    pressed: str,
    before: CaseState,
    after: CaseState,
    original_text: str | None,
    original_buttons: Sequence[Mapping[str, Any]] | None,
    task_id: str,
) -> dict[str, Any] | None:
    """The ``update_template_card`` body (without recipient/agent/code) a click calls for, or None.
    ``clicker`` is the staff id of the member who clicked."""
    if after is None:
        return None
    status, assignee = after
    if status not in OPEN_STATUSES:
        return {"button": {"replace_name": render(f"wecom.card.{status}")}}
    if before is not None and after != before and assignee != clicker:
        return {"button": {"replace_name": render("wecom.card.reassigned")}}
    if after == before or original_text is None:
        return None
    left = [
        b for b in usable_buttons(original_buttons) if b["key"] != pressed and not _spent(b["key"], status)
    ]
    if not left:
        return {"button": {"replace_name": render(f"status.{status}")}}
    return {"template_card": card(original_text, left, task_id, render(f"status.{status}"))}


def _spent(key: str, status: str) -> bool:
    """Buttons that no longer apply once the case moved on (接单 after it was accepted)."""
    return key.startswith("accept:") and status != "assigned"
