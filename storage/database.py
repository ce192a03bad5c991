"""Engine and session factory for the one database URL the process is given (SQLite or PostgreSQL)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes a second process wait for the
    # write lock instead of failing at once; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy's "begin" event open transactions itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    # pysqlite starts a transaction only at the first write, so two processes (or tasks) could both
    # read the same due rows before either claims them: SQLite has no row locks to SKIP. BEGIN
    # IMMEDIATE takes the write lock up front, so claims serialise; readers still read (WAL).
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# Loggers that would write bound values or fetched rows (residents' texts with phone and ID numbers, the
# WeChat access token) at DEBUG: aiosqlite logs every call with its arguments, SQLAlchemy's engine logs
# result rows (and at INFO every statement: noise in an operator's log). Capped at WARNING here so
# that no log level chosen for the process can let data through; errors still reach the log.
# python-telegram-bot and its HTTP client log every Bot API call with its parameters at DEBUG: the
# webhook's secret_token, invite codes and residents' texts being answered. Capped at INFO.
_DATA_LOGGERS = {
    "aiosqlite": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "telegram": logging.INFO,
    "httpx": logging.INFO,
    "httpcore": logging.INFO,
}


def quiet_data_loggers() -> None:
    for name, floor in _DATA_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level < floor:  # NOTSET (0) too: it would inherit the root's DEBUG
            logger.setLevel(floor)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # A logged statement or database error must not carry its parameters: residents' texts hold phone
    # numbers. SQLAlchemy then logs "[SQL parameters hidden]" instead.
    kwargs.setdefault("hide_parameters", True)
    quiet_data_loggers()
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
