"""WeChat mass send (群发, ``message/mass/send`` by openid list): the WeChat channel's delivery method
for broadcasts to residents outside the 48-hour window (``handlers/broadcasts/wechat_mass.py`` decides
who and counts the monthly quota; this module makes the call and says what came of it).

A call carries ``clientmsgid`` (the batch id): WeChat refuses a repeated one as a duplicate (45065),
which means the batch was accepted before and counts as sent."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.channels.wechat.client import WeChatAPIError, WeChatClient, WeChatTransportError
from handlers.kernel.ports import DeliveryOutcome, MassResult

log = logging.getLogger(__name__)

PATH = "/cgi-bin/message/mass/send"
DUPLICATE = 45065  # clientmsgid already used: this batch was sent before
RETRY_CODES = frozenset({45009, -1})  # daily API quota, system busy


class WeChatMassSender:
    """``handlers.kernel.ports.MassSender`` over the Official Account's API client."""

    def __init__(self, client: WeChatClient) -> None:
        self.client = client

    async def send_mass(self, recipients: Sequence[str], text: str, batch_id: str) -> MassResult:
        body = {
            "touser": list(recipients),
            "msgtype": "text",
            "text": {"content": text},
            "send_ignore_reprint": 0,
            "clientmsgid": batch_id,
        }
        try:
            await self.client.call(PATH, body)
        except WeChatAPIError as exc:
            if exc.errcode == DUPLICATE:
                log.info("mass send %s was accepted before; marking sent", batch_id)
                return MassResult(DeliveryOutcome.SENT)
            if exc.errcode in RETRY_CODES:
                return MassResult(DeliveryOutcome.RETRY_AT, str(exc))
            log.warning(
                "mass send refused (errcode %s); %d rows go the ordinary way", exc.errcode, len(recipients)
            )
            return MassResult(DeliveryOutcome.UNREACHABLE, str(exc))
        except WeChatTransportError as exc:
            return MassResult(DeliveryOutcome.RETRY_AT, str(exc))
        return MassResult(DeliveryOutcome.SENT)
