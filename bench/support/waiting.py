"""The one way a test waits: poll a condition until it holds or a generous deadline passes. Nothing
asserts timing; the deadline only bounds how long a broken feature takes to fail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 40.0  # seconds: generous, because a shared CI machine under load is slow, not broken


async def wait_until(
    condition: Callable[[], Awaitable[T | None] | T | None],
    what: str = "the condition",
    timeout: float = TIMEOUT,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` (plain or async) until it returns something truthy, and return that; fail
    with "gave up waiting for ``what``" after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(interval)
