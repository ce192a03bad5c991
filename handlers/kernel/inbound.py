"""What a channel hands the core: one message from one user, normalised and checked for bad input."""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime

MAX_TEXT = 1000  # longer than any real report; a 10,000-character paste gets a polite refusal
STORE_LIMIT = 20000  # what we keep of a hostile message, so the log stays bounded

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


@dataclass(frozen=True)
class Inbound:
    channel: str
    sender: str  # the user's id on that channel (telegram user id, wechat openid, console name)
    text: str | None = None
    photo: str | None = None  # the channel's reference to a picture (file_id, MediaId/PicUrl)
    latitude: float | None = None
    longitude: float | None = None
    message_id: str | None = None  # the platform's id, so a redelivery is recognised
    sender_name: str | None = None
    received_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # A scanned building code (一楼一码): WeChat's scan or subscribe EventKey, Telegram's /start payload.
    # The channel passes it as it came; the core verifies it (handlers/community/scenes.py).
    scene: str | None = None

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class InputProblem(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    GARBLED = "garbled"
    NO_WORDS = "no_words"  # only emoji or symbols


def clean_text(text: str | None) -> str:
    """Text safe to store on every backend: valid UTF-8, no NUL or control characters. Otherwise
    exactly what the person wrote (full-width punctuation included): folding is for matching only,
    see ``match_form``."""
    if not text:
        return ""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from binary junk
    text = _CONTROL.sub("", text)
    return text[:STORE_LIMIT].strip()


# Full-width ASCII as Chinese IMEs type it ("接单 １２", "Ｇ１", "：") and the ideographic space.
_WIDTH = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)} | {0x3000: " "}


def match_form(text: str) -> str:
    """The text as the command parsers read it: full-width forms folded to ASCII. One character in,
    one out, so a span matched in the folded text is the same span of the original."""
    return text.translate(_WIDTH)


def normalise(message: Inbound) -> Inbound:
    return replace(
        message, text=clean_text(message.text), sender_name=clean_text(message.sender_name) or None
    )


def _is_word_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in {"L", "N"} and category != "Lm"


def problem_with(message: Inbound) -> InputProblem | None:
    """Why a message cannot be read as a request, or None. A photo, location or scan alone is fine."""
    text = match_form(message.text or "")  # "２" typed on a Chinese keyboard is a digit, not junk
    if not text:
        return None if (message.photo or message.has_location or message.scene) else InputProblem.EMPTY
    if len(text) > MAX_TEXT:
        return InputProblem.TOO_LONG
    if text.count("\ufffd") * 4 >= len(text):  # undecodable bytes, replaced on the way in
        return InputProblem.GARBLED
    words = [ch for ch in text if _is_word_char(ch)]
    if not words:
        emoji = any(unicodedata.category(ch) == "So" for ch in text)
        return InputProblem.NO_WORDS if emoji else InputProblem.GARBLED
    readable = sum(1 for ch in words if "\u4e00" <= ch <= "\u9fff" or ch.isascii())
    if readable < len(words) / 2:  # mostly characters no resident types: binary junk decoded as text
        return InputProblem.GARBLED
    return None


def start_scene(payload: str | None) -> str | None:
    """A ``/start`` payload that is a building code's scene rather than a staff invite code: scenes
    carry ``_`` (``HPL_b…_…``), invite codes never do. Channels call this to fill ``Inbound.scene``."""
    if payload and "_" in payload and len(payload) <= 200:
        return payload
    return None
