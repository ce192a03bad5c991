"""The masking log filter (bot/logfilter.py): what reaches a log handler carries no bot token, no
signature, no phone number, and above DEBUG no traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from bot.logfilter import MaskingFilter

TOKEN = "7012345678:AAHkX9_q2Lr-8ZbkX9_q2Lr-8ZbkX9_q2Lr-8Zb"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test.logfilter")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_tokens_in_messages_and_arguments_are_masked(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = logged
    url = httpx.URL(f"https://api.telegram.org/bot{TOKEN}/getMe")  # httpx logs the URL object itself
    logger.debug('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 200, "OK")
    logger.info(f"calling with token {TOKEN}")
    logger.info("resident %s wrote %s", "500001", "请回电 13812345678")
    logger.info("callback %s", "/wechat?signature=abc123&timestamp=1700000000&nonce=42")
    text = stream.getvalue()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "/bot<token>/getMe" in text and '"HTTP/1.1 200 OK"' in text
    assert "13812345678" not in text and "138****5678" in text
    assert "abc123" not in text and "signature=***" in text


def test_an_error_is_one_masked_line_without_a_traceback(
    logged: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, handler = logged
    try:
        raise RuntimeError(f"could not reach https://api.telegram.org/bot{TOKEN}/getMe\nsecond line")
    except RuntimeError:
        logger.exception("telegram start failed for %s", "50%")
    text = stream.getvalue()
    assert text.count("\n") == 1 and "Traceback" not in text
    assert "telegram start failed for 50% [RuntimeError: could not reach" in text
    assert TOKEN.split(":")[1] not in text

    stream.truncate(0)
    stream.seek(0)
    handler.filters = [MaskingFilter(keep_tracebacks=True)]  # at DEBUG the traceback stays, masked
    try:
        raise RuntimeError(f"token {TOKEN}")
    except RuntimeError:
        logger.exception("failed")
    text = stream.getvalue()
    assert "Traceback" in text and TOKEN.split(":")[1] not in text


def test_uvicorns_access_log_still_formats_and_hides_signatures() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5555", "POST", "/wechat?signature=deadbeef&openid=oAbC123", "1.1", 200),
        None,
    )
    assert MaskingFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(
        record
    )
    assert "deadbeef" not in line and "oAbC123" not in line and line.endswith(" 200 OK")
