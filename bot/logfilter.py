"""A logging filter on the process's handlers that masks every record before it is written: bot
tokens, access tokens, signatures, phone and ID numbers (``handlers.kernel.privacy.mask_log``), in the
message, in its arguments (httpx passes the request URL as one) and in a traceback.

Operators get one line per error: above DEBUG a record's traceback is replaced by the exception's
type and first line; at DEBUG the traceback stays, masked. Installed by ``bot.cli.main`` on the root
logger's handlers, and again on uvicorn's own handlers once uvicorn has configured them
(``install``; it is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from handlers.kernel.privacy import mask_log

# uvicorn's loggers have handlers of their own and do not propagate to the root logger.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_PLAIN = (int, float, bool, type(None))


def _masked(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    text = str(value)
    masked = mask_log(text)
    return value if masked == text else masked


def _summary(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class MaskingFilter(logging.Filter):
    def __init__(self, keep_tracebacks: bool = False) -> None:
        super().__init__()
        self.keep_tracebacks = keep_tracebacks
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._mask(record)
        except Exception:  # a record that cannot be masked is still written, never lost
            record.msg, record.args = mask_log(repr(record.msg)), None
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        record.msg = _masked(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_masked(value) for value in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            if self.keep_tracebacks:
                record.exc_text = mask_log(self._formatter.formatException(record.exc_info))
            else:
                summary = mask_log(_summary(record.exc_info[1]))[:300]
                if record.args:
                    summary = summary.replace("%", "%%")  # the message is still to be %-formatted
                record.msg = f"{record.msg} [{summary}]"
                record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = None if not self.keep_tracebacks else mask_log(record.stack_info)


def install(level: int | str = logging.INFO) -> None:
    """Put the filter on the root logger's handlers and on uvicorn's (each once)."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    keep = isinstance(numeric, int) and numeric <= logging.DEBUG
    handlers = list(logging.getLogger().handlers)
    for name in UVICORN_LOGGERS:
        handlers.extend(logging.getLogger(name).handlers)
    for handler in handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter(keep_tracebacks=keep))
