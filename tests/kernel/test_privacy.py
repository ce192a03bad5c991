"""The masking shared by logs, exports and staff cards (handlers/kernel/privacy.py)."""

from __future__ import annotations

import pytest

from handlers.kernel.privacy import (
    HEALTH_MASK,
    mask_health,
    mask_identifiers,
    mask_log,
    mask_secrets,
    mask_text,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("电话13812345678找我", "电话138****5678找我"),
        ("打138 1234 5678", "打138****5678"),
        ("+86-138-1234-5678", "138****5678"),
        ("身份证110101199003071234", "身份证110***********1234"),
        ("身份证11010119900307123X号", "身份证110***********123X号"),
        ("座机010-62345678", "座机010-****5678"),
    ],
)
def test_identifiers_are_masked(raw: str, masked: str) -> None:
    assert mask_identifiers(raw) == masked


@pytest.mark.parametrize("kept", ["3号楼2单元301", "#12 已派给张伟", "订单号 20261203", "¥1380"])
def test_ordinary_numbers_are_kept(kept: str) -> None:
    assert mask_identifiers(kept) == kept


def test_health_words_are_masked_longest_first() -> None:
    assert mask_health("我有乙肝病毒，楼下垃圾太臭") == f"我有{HEALTH_MASK}，楼下垃圾太臭"
    assert mask_health("积水太多怕得登革热") == "积水太多怕得登革热"


def test_secrets_are_masked() -> None:
    line = (
        "POST /wechat?signature=abc123&timestamp=1700000000&nonce=42&openid=oXYZ&encrypt_type=aes "
        "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"
    )
    masked = mask_secrets(line)
    for secret in ("abc123", "1700000000", "oXYZ", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"):
        assert secret not in masked
    assert "encrypt_type=aes" in masked


def test_mask_text_and_log() -> None:
    text = "我是孕妇，电话13812345678，3号楼垃圾没人收"
    assert mask_text(text) == f"我是{HEALTH_MASK}，电话138****5678，3号楼垃圾没人收"
    assert mask_log(text) == "我是孕妇，电话138****5678，3号楼垃圾没人收"
