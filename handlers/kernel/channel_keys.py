"""The accounts a staff member may list in the community file, one key per channel
(``telegram: 123456789``, ``wecom: zhangwei``) with the type the file writes it in.

The channel registry (``bot/channels/registry.py``) names each channel's key; the kernel keeps this list
itself because it must not import ``bot/`` (the registry checks at import that every key it names is
here). The console needs no key: every staff member can use it under their own id."""

from __future__ import annotations

IDENTITY_KEYS: dict[str, type] = {"telegram": int, "wechat": str, "wecom": str}
CONSOLE = "console"  # the local console channel; its account for a staff member is their staff id
