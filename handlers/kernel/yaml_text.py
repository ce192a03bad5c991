"""YAML data files parsed with libyaml's C loader when PyYAML has it (several times faster at start-up)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Same result as ``yaml.safe_load``; only the parser differs."""
    return yaml.load(text, Loader=_LOADER)
