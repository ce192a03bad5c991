"""uvicorn's settings for a server on the open internet: an access log that never prints a callback's
query string (WeChat and WeCom put the signature, timestamp, nonce, msg_signature and openid there: one
such line was enough to forge a callback), connections that cannot be held open for nothing, and a
bound on concurrent connections."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from handlers.privacy import mask_secrets

KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
HEADER_TIMEOUT = 10  # seconds for a request's headers to arrive on a new or idle connection
LIMIT_CONCURRENCY = 500  # connections and requests at once; beyond that uvicorn answers 503
QUIET_QUERY_PATHS = ("/wechat", "/wecom")  # query left out of the access log entirely


class AccessLogFilter(logging.Filter):
    """uvicorn.access lines: the callbacks' query strings dropped, any other query's secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query:
                shown = path if path in QUIET_QUERY_PATHS else mask_secrets(args[2])
                record.args = (*args[:2], shown, *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with ``AccessLogFilter`` on its access handler (a
    configuration, not a filter added at run time, so that every worker process gets it)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["quiet_query"] = {"()": f"{__name__}.AccessLogFilter"}
    config["handlers"]["access"]["filters"] = ["quiet_query"]
    return config


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol, which has no header deadline
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """Closes a connection whose request headers are not complete ``HEADER_TIMEOUT`` seconds after
        it opened or after its last response: uvicorn's keep-alive timer starts only after a response,
        and stops at the first byte, so a client that never sends, or sends a byte at a time, would
        hold the connection for ever."""

        _header_deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _idle(self) -> bool:
            """No request in flight (none yet, or the last one answered)."""
            return self.cycle is None or self.cycle.response_complete

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self._idle() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._idle() and not self.transport.is_closing():  # not when a pipelined one started
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)


def _protocol() -> Any:
    return GuardedHttpToolsProtocol if HttpToolsProtocol is not None else "h11"


def uvicorn_options(access_log: bool) -> dict[str, Any]:
    """The keyword arguments ``uvicorn.Config`` / ``uvicorn.run`` get from here."""
    return {
        "access_log": access_log,
        "log_config": log_config(),
        "http": _protocol(),
        "timeout_keep_alive": KEEP_ALIVE,
        "limit_concurrency": LIMIT_CONCURRENCY,
    }
