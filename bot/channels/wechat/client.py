"""Our own async client for the few WeChat Official Account endpoints we call (wechatpy 1.8.18 has none).

* The access token comes from ``POST /cgi-bin/stable_token`` (``force_refresh=false``: idempotent while
  the token is valid, isolated from ``/cgi-bin/token``). It is cached in the database (or Redis when
  ``OUTREACH_REDIS_URL`` is set) and shared by every process. One process at a time refreshes it, ahead
  of expiry: it takes a short lease (compare-and-set on the token row, or Redis ``SET NX``) and the
  others keep using the old token, or wait for the new one when there is none.
* ``40001``/``40014``/``42001`` (token invalid or expired) refresh the token and retry the call once.
* Neither the app secret nor an access token ever reaches a log line or an exception message: the token
  travels in the query string, so errors name the endpoint path only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from handlers.kernel.clock import utcnow
from handlers.kernel.token_store import LEASE as LEASE
from handlers.kernel.token_store import REFRESH_AHEAD as REFRESH_AHEAD
from handlers.kernel.token_store import CachedToken as CachedToken
from handlers.kernel.token_store import DatabaseTokenStore as DatabaseTokenStore  # where channels find it

log = logging.getLogger(__name__)

RECHECK = timedelta(seconds=60)  # inside that margin, ask WeChat at most this often
WAIT = 15.0  # seconds a caller waits for another process's refresh when it has no token at all
TOKEN_ERRORS = frozenset({40001, 40014, 42001})

# Error codes the sender acts on.
OUT_OF_WINDOW = 45015  # response out of time limit (48 hours)
CS_QUOTA = 45047  # out of response count limit
API_QUOTA = 45009  # daily API quota reached
NOT_FOLLOWING = 43004  # require subscribe
SUBSCRIBE_REFUSED = 43101  # user refused the subscription message
INVALID_OPENID = 40003
SYSTEM_BUSY = -1


class WeChatAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: errcode {errcode} ({errmsg[:80]})")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path


class WeChatTransportError(Exception):
    """The API could not be reached or answered garbage (no URL in the message: it holds the token)."""


class TokenStore(Protocol):
    async def get(self, key: str) -> CachedToken | None: ...

    async def try_lock(self, key: str, now: datetime) -> bool: ...

    async def put(self, key: str, token: str, expires_at: datetime, now: datetime) -> None: ...

    async def release(self, key: str) -> None: ...

    async def close(self) -> None: ...


class RedisTokenStore:
    """The token as JSON under ``outreach:wechat:token:{key}``; the lease is ``SET NX PX``."""

    def __init__(self, url: str, prefix: str = "outreach:wechat:token:") -> None:
        import redis.asyncio as redis  # optional dependency (pip install 'shequtong[redis]')

        self.redis = redis.from_url(url)
        self.prefix = prefix

    async def get(self, key: str) -> CachedToken | None:
        raw = await self.redis.get(self.prefix + key)
        if raw is None:
            return None
        data = json.loads(raw)
        return CachedToken(
            data["token"],
            datetime.fromisoformat(data["expires_at"]),
            datetime.fromisoformat(data["checked_at"]),
        )

    async def try_lock(self, key: str, now: datetime) -> bool:
        lease_ms = int(LEASE.total_seconds() * 1000)
        return bool(await self.redis.set(self.prefix + key + ":lock", "1", nx=True, px=lease_ms))

    async def put(self, key: str, token: str, expires_at: datetime, now: datetime) -> None:
        data = {"token": token, "expires_at": expires_at.isoformat(), "checked_at": now.isoformat()}
        ttl = max(int((expires_at - now).total_seconds()), 1)
        await self.redis.set(self.prefix + key, json.dumps(data), ex=ttl)
        await self.release(key)

    async def release(self, key: str) -> None:
        await self.redis.delete(self.prefix + key + ":lock")

    async def close(self) -> None:
        await self.redis.aclose()


class TokenSource:
    """An access token shared through a ``TokenStore``; ``fetch(force)`` asks the platform for one."""

    def __init__(
        self,
        key: str,
        store: TokenStore,
        fetch: Callable[[bool], Any],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.key = key
        self.store = store
        self.fetch = fetch
        self.clock = clock
        self._memory: CachedToken | None = None
        self._local = asyncio.Lock()  # one refresh attempt per process at a time

    async def get(self, refused: str | None = None) -> str:
        """A valid token; ``refused`` is a token the API just rejected (fetch a different one)."""
        memory = self._memory
        if memory is not None and memory.token != refused and memory.fresh(self.clock()):
            assert memory.token is not None
            return memory.token
        async with self._local:
            deadline = asyncio.get_running_loop().time() + WAIT
            while True:
                now = self.clock()
                cached = await self.store.get(self.key)
                if cached is not None and cached.token == refused:
                    cached = None
                if cached is not None and cached.fresh(now):
                    self._memory = cached
                    assert cached.token is not None
                    return cached.token
                recently = cached is not None and cached.checked_at and now - cached.checked_at < RECHECK
                if cached is not None and cached.usable(now) and recently:
                    self._memory = cached
                    assert cached.token is not None
                    return cached.token
                if await self.store.try_lock(self.key, now):
                    # Another process's refresh may have ended between our read and our lease (its
                    # ``put`` ends its lease): on a loaded machine that gap is wide, and we would fetch
                    # a second token. Now that the lease is ours, look once more.
                    latest = await self.store.get(self.key)
                    if latest is not None and latest.token != refused and latest.fresh(self.clock()):
                        await self.store.release(self.key)
                        self._memory = latest
                        assert latest.token is not None
                        return latest.token
                    return await self._refresh(refused)
                if cached is not None and cached.usable(now):
                    return cached.token  # type: ignore[return-value]  # another process is refreshing
                if asyncio.get_running_loop().time() > deadline:
                    raise WeChatTransportError("timed out waiting for another process to refresh the token")
                await asyncio.sleep(0.05)

    async def _refresh(self, refused: str | None) -> str:
        try:
            token, expires_in = await self.fetch(False)
            if refused is not None and token == refused:
                token, expires_in = await self.fetch(True)  # normal mode keeps the refused one
        except BaseException:
            await self.store.release(self.key)
            raise
        now = self.clock()
        expires_at = now + timedelta(seconds=int(expires_in))
        await self.store.put(self.key, token, expires_at, now)
        self._memory = CachedToken(token, expires_at, now)
        log.info("access token refreshed for %s (valid %ss)", self.key.split(":")[0], expires_in)
        return token

    def forget(self) -> None:
        self._memory = None


class TencentClient:
    """What the Official Account and WeCom clients share: JSON over our httpx client, errors that never
    carry the URL (it holds the token), and ``call`` with a token refreshed once when refused.
    Subclasses give ``tokens`` (a ``TokenSource``) and ``_fetch_token``."""

    tokens: TokenSource

    def __init__(
        self, api_url: str, store: TokenStore, http: httpx.AsyncClient | None, timeout: float
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self._own_http = http is None
        self.store = store

    async def close(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def _request(
        self, method: str, path: str, params: dict[str, str] | None, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            if body is None:
                response = await self.http.request(method, self.api_url + path, params=params)
            else:
                response = await self.http.request(
                    method,
                    self.api_url + path,
                    params=params,
                    content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
        except httpx.HTTPError as exc:
            raise WeChatTransportError(f"{path}: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise WeChatTransportError(f"{path}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise WeChatTransportError(f"{path}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(data, dict):
            raise WeChatTransportError(f"{path}: unexpected answer")
        errcode = int(data.get("errcode") or 0)
        if errcode:
            raise WeChatAPIError(errcode, str(data.get("errmsg", "")), path)
        return data

    async def _post(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> Any:
        return await self._request("POST", path, params, body)

    async def access_token(self) -> str:
        return await self.tokens.get()

    async def call(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path`` with the access token; a refused token is refreshed once."""
        token = await self.tokens.get()
        try:
            return await self._post(path, body, {"access_token": token})
        except WeChatAPIError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.warning("%s refused the access token (errcode %s); refreshing", path, exc.errcode)
        self.tokens.forget()
        token = await self.tokens.get(refused=token)
        return await self._post(path, body, {"access_token": token})


class WeChatClient(TencentClient):
    """The Official Account API calls the bot makes."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        api_url: str,
        store: TokenStore,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(api_url, store, http, timeout)
        self.app_id = app_id
        self._secret = secret
        self.tokens = TokenSource(f"{app_id}:stable", store, self._fetch_token, clock)
        self.token_fetches = 0

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        self.token_fetches += 1
        data = await self._post(
            "/cgi-bin/stable_token",
            {
                "grant_type": "client_credential",
                "appid": self.app_id,
                "secret": self._secret,
                "force_refresh": force,
            },
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatTransportError("/cgi-bin/stable_token: no token in the answer")
        return token, int(data.get("expires_in") or 7200)

    async def send_text(self, openid: str, text: str) -> Any:
        return await self.call(
            "/cgi-bin/message/custom/send",
            {"touser": openid, "msgtype": "text", "text": {"content": text}},
        )

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], url: str | None = None
    ) -> Any:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        return await self.call("/cgi-bin/message/template/send", body)

    async def send_subscribe(
        self, openid: str, template_id: str, data: dict[str, Any], page: str | None = None
    ) -> Any:
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if page:
            body["page"] = page
        return await self.call("/cgi-bin/message/subscribe/bizsend", body)
