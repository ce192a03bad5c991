"""Our async client for the three WeCom endpoints the bot calls (wechatpy 1.8.18 has no async client).

* ``GET /cgi-bin/gettoken?corpid=&corpsecret=``: one token per app secret. It is cached and shared
  between processes by the Official Account's ``TokenSource``/``TokenStore`` under the key
  ``wecom:{corp_id}:{agent_id}``, refreshed ahead of expiry by one process at a time.
* ``POST /cgi-bin/message/send`` and ``POST /cgi-bin/message/update_template_card``.
* ``40001``/``40014``/``42001`` (token invalid or expired) refresh the token and retry the call once.
* The secret and the token never reach a log line or an exception message: the token travels in the
  query string, so errors name the endpoint path only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from bot.channels.wechat.client import TencentClient, TokenSource, TokenStore, WeChatTransportError
from handlers.kernel.clock import utcnow

log = logging.getLogger(__name__)

SEND = "/cgi-bin/message/send"
UPDATE_CARD = "/cgi-bin/message/update_template_card"
GET_TOKEN = "/cgi-bin/gettoken"


def token_key(corp_id: str, agent_id: int) -> str:
    return f"wecom:{corp_id}:{agent_id}"


class WeComClient(TencentClient):
    def __init__(
        self,
        corp_id: str,
        agent_id: int,
        secret: str,
        api_url: str,
        store: TokenStore,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = utcnow,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(api_url, store, http, timeout)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self.tokens = TokenSource(token_key(corp_id, agent_id), store, self._fetch_token, clock)

    async def _fetch_token(self, _force: bool) -> tuple[str, int]:
        # gettoken has no force flag: while a token is valid WeCom hands out the same one.
        data = await self._request("GET", GET_TOKEN, {"corpid": self.corp_id, "corpsecret": self._secret})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatTransportError(f"{GET_TOKEN}: no token in the answer")
        return token, int(data.get("expires_in") or 7200)

    async def send(self, userid: str, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` is ``{"msgtype": …, <msgtype>: {…}}``; the recipient and agent are added here."""
        body = {"touser": userid, "agentid": self.agent_id, **message}
        return await self.call(SEND, body)

    async def update_card(self, userid: str, response_code: str, update: dict[str, Any]) -> dict[str, Any]:
        """``update`` is ``{"button": {"replace_name": …}}`` or ``{"template_card": {…}}``."""
        body = {"userids": [userid], "agentid": self.agent_id, "response_code": response_code, **update}
        return await self.call(UPDATE_CARD, body)
