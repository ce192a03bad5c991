"""The message catalog: every template loads whole and every key the code uses exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messages import MessageCatalogError, catalog, render

ROOT = Path(__file__).resolve().parents[2]


def test_no_template_is_cut_by_a_yaml_comment() -> None:
    # In YAML, " #" starts a comment inside an unquoted one-line value: "已接单 #{number}" would load
    # as "已接单". Such values must be quoted (block scalars are safe).
    for path in (ROOT / "messages" / "zh_CN").glob("*.yaml"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = re.match(r"^[a-z_.]+: (.*)$", line)
            if match and not match.group(1).startswith(('"', "'", "|", ">")):
                assert " #" not in match.group(1), f"{path.name}:{n} needs quotes"
    assert "#7" in render("staff.accepted_ok", number=7)


def test_every_key_used_in_code_exists() -> None:
    used: set[str] = set()
    for path in [*ROOT.glob("bot/*.py"), *ROOT.glob("handlers/*.py")]:
        used |= set(re.findall(r'render\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in catalog())
    assert not missing, missing


def test_render_fills_and_fails_loudly() -> None:
    assert "#7" in render("staff.accepted_ok", number=7)
    with pytest.raises(MessageCatalogError):
        render("no.such.key")
    with pytest.raises(MessageCatalogError):
        render("staff.accepted_ok")
