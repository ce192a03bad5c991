"""uvicorn's settings for a server on the open internet: an access log that never prints a callback's
query string (WeChat and WeCom put the signature, timestamp, nonce, msg_signature and openid there: one
such line was enough to forge a callback), connections that cannot be held open for nothing, and
bounds on concurrent connections that one address cannot use up for everyone.

Per process (each ``serve --workers`` process counts its own):

* at most ``max_connections`` connections and requests at once (uvicorn answers 503 beyond);
* at most ``per_client_connections`` open connections from one address: a further one is answered
  503 and closed at once. 520 idle connections from one address used to make every request 503;
* when the server is nearly full, a new connection closes the connection that has waited longest
  without sending a request (idle ones cost nothing to drop; a request in flight is never dropped);
* at most ``per_client_requests`` requests in flight from one client (``guard_app``), the client being
  the address in ``X-Forwarded-For`` only when the connection comes from one of ``trusted_proxies``;
  connections from a trusted proxy are not capped by address (the proxy's ``limit_conn`` does it,
  docs/security.md).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.kernel.privacy import mask_secrets

KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
HEADER_TIMEOUT = 10  # seconds for a request's headers to arrive on a new or idle connection
LIMIT_CONCURRENCY = 500  # connections and requests at once; beyond that uvicorn answers 503
# Telegram opens up to 40 webhook connections (setWebhook max_connections) and WeChat's callback
# servers come from a few addresses: one platform must stay well within one address's share.
PER_CLIENT_CONNECTIONS = 64
PER_CLIENT_REQUESTS = 64
SHED_AT = 0.9  # share of max_connections from which a new connection closes the longest-idle one
QUIET_QUERY_PATHS = ("/wechat", "/wecom")  # query left out of the access log entirely
REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class GuardLimits:
    max_connections: int = LIMIT_CONCURRENCY
    per_client_connections: int = PER_CLIENT_CONNECTIONS
    per_client_requests: int = PER_CLIENT_REQUESTS
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks ("10.0.0.0/8") of reverse proxies

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies if p.strip())

    def trusts(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in _networks(self))


_NETWORKS: dict[GuardLimits, tuple[Network, ...]] = {}


def _networks(limits: GuardLimits) -> tuple[Network, ...]:
    if limits not in _NETWORKS:
        _NETWORKS[limits] = limits.networks()
    return _NETWORKS[limits]


_limits: GuardLimits | None = None


def limits() -> GuardLimits:
    """The limits in force: those the composition root gave (``uvicorn_options``, or ``use_limits`` in
    a worker process of ``serve --workers``), else the environment's defaults."""
    global _limits
    if _limits is None:
        from bot.settings import load_settings

        _limits = limits_from(load_settings())
    return _limits


def use_limits(guard: GuardLimits) -> None:
    """Enforce these limits in this process (the composition root reads them from its settings)."""
    global _limits
    _limits = guard


def limits_from(settings: Any) -> GuardLimits:
    return GuardLimits(
        max_connections=settings.max_connections,
        per_client_connections=settings.max_connections_per_client,
        per_client_requests=settings.max_requests_per_client,
        trusted_proxies=tuple(p.strip() for p in settings.trusted_proxies.split(",") if p.strip()),
    )


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


# Open connections per client address, and those waiting for a request (oldest first), in this process.
_per_address: dict[str, int] = {}
_waiting: dict[Any, None] = {}


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """Closes a connection whose request headers are not complete ``HEADER_TIMEOUT`` seconds after
        it opened or after its last response: uvicorn's keep-alive timer starts only after a response,
        and stops at the first byte, so a client that never sends, or sends a byte at a time, would
        hold the connection for ever. Refuses a connection beyond its address's share, and when the
        server is nearly full makes room by closing the connection idle longest."""

        _header_deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None  # the address this connection counts against

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
            guard = limits()
            host = self.client[0] if self.client else None
            if host is not None and not guard.trusts(host):
                if _per_address.get(host, 0) >= guard.per_client_connections:
                    transport.write(REFUSED)
                    transport.close()
                    return
                _per_address[host] = _per_address.get(host, 0) + 1
                self._counted = host
            if len(self.connections) >= guard.max_connections * SHED_AT:
                self._shed()
            self._arm()

        def _shed(self) -> None:
            """Close the connection that has waited longest without sending a request."""
            for oldest in _waiting:
                if oldest is not self and not oldest.transport.is_closing():
                    oldest.transport.close()
                    _waiting.pop(oldest, None)
                    return

        def data_received(self, data: bytes) -> None:
            _waiting.pop(self, None)  # sending: no longer idle (re-armed after its response)
            super().data_received(data)

        def _arm(self) -> None:
            self._disarm()
            _waiting[self] = None
            self._header_deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._idle() and not self.transport.is_closing():  # not when a pipelined one started
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            _waiting.pop(self, None)
            if self._counted is not None:
                left = _per_address.get(self._counted, 1) - 1
                if left > 0:
                    _per_address[self._counted] = left
                else:
                    _per_address.pop(self._counted, None)
                self._counted = None
            super().connection_lost(exc)


def _protocol() -> Any:
    return GuardedHttpToolsProtocol if HttpToolsProtocol is not None else "h11"


def uvicorn_options(access_log: bool, guard: GuardLimits | None = None) -> dict[str, Any]:
    """The keyword arguments ``uvicorn.Config`` / ``uvicorn.run`` get from here; ``guard`` (default:
    from the environment) becomes the limits this process enforces."""
    if guard is not None:
        use_limits(guard)
    guard = limits()
    return {
        "access_log": access_log,
        "log_config": log_config(),
        "http": _protocol(),
        "timeout_keep_alive": KEEP_ALIVE,
        "limit_concurrency": guard.max_connections,
        # X-Forwarded-For is read only from the configured proxies (uvicorn's default trusts 127.0.0.1).
        "proxy_headers": bool(guard.trusted_proxies),
        "forwarded_allow_ips": list(guard.trusted_proxies),
    }


def guard_app(app: ASGIApp) -> ASGIApp:
    """At most ``per_client_requests`` HTTP requests in flight per client (503 beyond). The client is
    ``scope["client"]``: the connecting address, or X-Forwarded-For's when uvicorn was told to trust
    the connecting proxy (``uvicorn_options``)."""
    in_flight: dict[str, int] = {}

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("client"):
            await app(scope, receive, send)
            return
        host = str(scope["client"][0])
        if in_flight.get(host, 0) >= limits().per_client_requests:
            log.warning("too many requests in flight from one client; answered 503")
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        in_flight[host] = in_flight.get(host, 0) + 1
        try:
            await app(scope, receive, send)
        finally:
            left = in_flight[host] - 1
            if left:
                in_flight[host] = left
            else:
                del in_flight[host]

    return guarded
