"""Masking of personal data in text that leaves the place it was written: logs, exports, the cards
staff receive. One place so that a log filter, the ``tickets`` export and a worker's case card hide the
same things the same way (PIPL: phone and ID numbers are personal data; health conditions are
sensitive personal data and must not reach grid workers or message previews).

- ``mask_identifiers``: mainland mobile numbers (138****5678), landlines, 18- and 15-digit resident ID
  numbers (keeping the first 3 and last 4 characters, so staff can still tell two apart on the phone).
- ``mask_health``: the health-condition words listed in ``data/health_words.yaml`` become ``【健康信息】``.
- ``mask_secrets``: bot tokens, access tokens, signatures, nonces, openids and secrets in URLs and
  query strings, and Telegram bot tokens anywhere (``123456:ABC…``).
- ``mask_codes``: one-time codes (a staff invite, a second guardian's join code) after the words that
  hand them out or use them ("邀请码：K7M2QX9A", "绑定 K7M2QX9A", "加入 K7M2QX9A", "/start K7M2QX9A").
- ``mask_text``: all of them, for exports, staff cards and outbox previews; logs use identifiers,
  secrets and codes.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from handlers.kernel.yaml_text import load_yaml

HEALTH_MASK = "【健康信息】"

# Digits not glued to other digits: a case number or a price next to a phone number stays readable.
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[\s-]?)?(1[3-9][0-9])[\s-]?([0-9]{4})[\s-]?([0-9]{4})(?![0-9])")
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{2})[0-9]{11}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_ID_CARD_15 = re.compile(r"(?<![0-9])([1-9][0-9]{2})[0-9]{8}([0-9]{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0[1-9][0-9]{1,2})[\s-]?([0-9]{3,4})[0-9]{4}(?![0-9])")

# Telegram's tokens have 35 characters after the colon today; 20 catches shortened or test tokens too.
_TELEGRAM_TOKEN = re.compile(r"(?<![0-9])([0-9]{5,12}):[A-Za-z0-9_-]{20,}")
_SECRET_PARAMS = (
    "access_token|token|secret|secret_token|signature|msg_signature|nonce|timestamp|openid|"
    "corpsecret|echostr|encodingaeskey|aes_key|password|code|ticket"
)
_QUERY_SECRET = re.compile(rf"(?i)\b({_SECRET_PARAMS})=([^&\s'\"]+)")
# The same keys as a dict's repr or JSON: {'secret_token': '…'} / {"secret_token": "…"} (PTB logs its
# Bot API parameters this way at DEBUG).
_QUOTED_SECRET = re.compile(rf"""(?i)(['"]({_SECRET_PARAMS})['"]\s*:\s*)(?:'[^']*'|"[^"]*"|[^,}}\s]+)""")
_HEADER_SECRET = re.compile(r"(?i)(x-telegram-bot-api-secret-token['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)")
_CODE = re.compile(
    r"(?i)(邀请码|验证码|绑定|加入|/start|/bind|\bcode)([\s:：“\"'=]*)([A-Za-z0-9]{6,32})(?![A-Za-z0-9])"
)
CODE_MASK = "********"
_BOT_PATH = re.compile(r"(/bot)([0-9]{5,12}:[A-Za-z0-9_-]{20,})")


def mask_identifiers(text: str) -> str:
    """Phone and ID-card numbers masked: 13812345678 → 138****5678."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}***********{m.group(2)}", text)
    text = _ID_CARD_15.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(0)[-4:]}", text)


@cache
def health_words() -> tuple[str, ...]:
    raw = load_yaml(
        resources.files("handlers").joinpath("data", "health_words.yaml").read_text(encoding="utf-8")
    )
    words = {str(word) for group in raw.values() for word in group}
    return tuple(sorted(words, key=len, reverse=True))  # longest first: 乙肝病毒 before 乙肝


@cache
def _health_pattern() -> re.Pattern[str]:
    return re.compile("|".join(re.escape(word) for word in health_words()), re.IGNORECASE)


def mask_health(text: str) -> str:
    """Health-condition words replaced by ``【健康信息】``."""
    return _health_pattern().sub(HEALTH_MASK, text)


def mask_secrets(text: str) -> str:
    """Tokens, signatures, nonces and openids in URLs, query strings and headers masked."""
    text = _BOT_PATH.sub(r"\1<token>", text)
    text = _TELEGRAM_TOKEN.sub(r"\1:<token>", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
    text = _QUOTED_SECRET.sub(lambda m: f"{m.group(1)}'***'", text)
    return _HEADER_SECRET.sub(lambda m: f"{m.group(1)}***", text)


def mask_codes(text: str) -> str:
    """One-time codes masked where they are handed out or used: 绑定 K7M2QX9A → 绑定 ********."""
    return _CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}{CODE_MASK}", text)


def mask_text(text: str) -> str:
    """Everything masked: what an export or a worker's card may show of a resident's words."""
    return mask_health(mask_identifiers(mask_codes(mask_secrets(text))))


def mask_log(text: str) -> str:
    """What a log line may show: no secrets, codes, phone or ID numbers."""
    return mask_identifiers(mask_codes(mask_secrets(text)))
