"""The application: settings, composition root, CLI, server and channel adapters."""

from __future__ import annotations

import sys


def _jieba_without_pkg_resources() -> None:
    """jieba reads its dictionary through ``pkg_resources`` when that imports, which costs a third of
    a second at every start (setuptools scans every installed distribution); without it jieba opens
    the same files by path. Import jieba once with ``pkg_resources`` hidden, then put it back."""
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        return
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # makes the import fail fast
    try:
        import jieba  # noqa: F401
    except ImportError:
        pass
    finally:
        del sys.modules["pkg_resources"]


_jieba_without_pkg_resources()
