"""Report categories as data: their definitions from ``data/categories.yaml``, checked, and merged with
a community file's overrides (extra words, names, exclusions)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from handlers.kernel.textnorm import fold
from handlers.kernel.yaml_text import load_yaml

OTHER = "other"  # the category of a problem no configured category names (reserved)


@dataclass(frozen=True)
class CategoryDef:
    code: str
    name: str
    keywords: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    time_limit_hours: float = 8.0
    photo_wanted: bool = False
    enabled: bool = True
    support: tuple[str, ...] = ()


class CategoryConfigError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _data(name: str) -> Any:
    return load_yaml(resources.files("handlers").joinpath("data", name).read_text(encoding="utf-8"))


def _words(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise CategoryConfigError(key, "not_a_list_of_words")
    return tuple(fold(w.strip()).lower() for w in value)


def _category(raw: Mapping[str, Any], key: str) -> CategoryDef:
    known = {
        "code",
        "name",
        "keywords",
        "support",
        "exclusions",
        "time_limit_hours",
        "photo_wanted",
        "enabled",
    }
    for name in raw:
        if name not in known | {"extra_keywords", "extra_exclusions", "extra_support"}:
            raise CategoryConfigError(f"{key}.{name}", "unknown_key")
    for name in ("code", "name"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise CategoryConfigError(f"{key}.{name}", f"missing_{name}")
    keywords = _words(raw.get("keywords"), f"{key}.keywords")
    if not keywords:
        raise CategoryConfigError(f"{key}.keywords", "missing_keywords")
    limit = raw.get("time_limit_hours", 8.0)
    if not isinstance(limit, int | float) or limit <= 0:
        raise CategoryConfigError(f"{key}.time_limit_hours", "not_a_positive_number")
    exclusions = tuple(str(e) for e in raw.get("exclusions") or ())
    _check_patterns(exclusions, f"{key}.exclusions")
    return CategoryDef(
        code=raw["code"].strip(),
        name=raw["name"].strip(),
        keywords=keywords,
        exclusions=exclusions,
        time_limit_hours=float(limit),
        photo_wanted=bool(raw.get("photo_wanted", False)),
        enabled=bool(raw.get("enabled", True)),
        support=_words(raw.get("support"), f"{key}.support"),
    )


def _check_patterns(patterns: Sequence[str], key: str) -> None:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error:
            raise CategoryConfigError(f"{key}[{i}]", "bad_pattern") from None


@cache
def load_default_categories() -> list[CategoryDef]:
    return [
        _category(raw, f"categories[{i}]") for i, raw in enumerate(_data("categories.yaml")["categories"])
    ]


def merge_categories(
    defaults: Sequence[CategoryDef], overrides: Sequence[Mapping[str, Any]]
) -> list[CategoryDef]:
    """Apply a community's ``categories:`` list: same code → given fields replace (``extra_*`` extend,
    ``enabled: false`` switches off); new code → a new category (needs name and keywords)."""
    merged = {c.code: c for c in defaults}
    for i, raw in enumerate(overrides):
        key = f"categories[{i}]"
        if not isinstance(raw, Mapping):
            raise CategoryConfigError(key, "not_a_mapping")
        code = raw.get("code")
        if not isinstance(code, str) or not code.strip():
            raise CategoryConfigError(f"{key}.code", "missing_code")
        if code == OTHER:
            raise CategoryConfigError(f"{key}.code", "reserved_code")
        base = merged.get(code.strip())
        if base is None:
            merged[code.strip()] = _category(raw, key)
            continue
        fields = {
            "code": base.code,
            "name": base.name,
            "keywords": list(base.keywords),
            "support": list(base.support),
            "exclusions": list(base.exclusions),
            "time_limit_hours": base.time_limit_hours,
            "photo_wanted": base.photo_wanted,
            "enabled": base.enabled,
        }
        fields.update({k: v for k, v in raw.items() if not k.startswith("extra_")})
        for extra in ("keywords", "support", "exclusions"):
            added = raw.get(f"extra_{extra}")
            if added is not None:
                if not isinstance(added, list):
                    raise CategoryConfigError(f"{key}.extra_{extra}", "not_a_list_of_words")
                fields[extra] = [*fields[extra], *added]
        merged[base.code] = _category(fields, key)
    return list(merged.values())
