"""The kernel's clock: aware UTC now, for channels that must not import ``storage/`` for it."""

from __future__ import annotations

from storage.models import utcnow as utcnow
