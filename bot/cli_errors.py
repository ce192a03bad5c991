"""Operators get one line, never a traceback: the errors a command can meet before it does anything
(an invalid setting, a bad database URL, a database that does not exist, a refused port, an unreadable
file) become one clear sentence on stderr and exit status 1; a closed pipe (``… | head``) ends the
command quietly."""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

from messages import render

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show its scheme only, it may hold a password
        return url.split(":", 1)[0] + ":…"


def _database_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).database or "?"
    except Exception:
        return "?"


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def explain_settings(error: BaseException) -> str | None:
    """One line for settings the tree refused (each variable named, its value never shown: it may be
    a secret), or None when ``error`` is something else."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.settings import env_name, problems

    if isinstance(error, ValidationError):
        return render("cli.settings_invalid", problems="; ".join(problems(error)))
    if isinstance(error, SettingsError):  # a list or mapping variable that is not JSON
        text = str(error)
        field = re.search(r'field "(\w+)"', text)
        if field is not None:
            text = f"{env_name((field.group(1),))}: {error.__cause__ or text}"
        return render("cli.settings_invalid", problems=text.splitlines()[0])
    return None


def explain(error: BaseException, source: object = None, url: str = "") -> str | None:
    """The one-line message for an error an operator can fix, or None for a real bug (``url``: the
    configured database, shown without its password)."""
    from sqlalchemy import exc as sa_exc

    from handlers.community.model import CommunityConfigError
    from handlers.kernel.privacy import mask_log as scrub

    if isinstance(error, CommunityConfigError):
        head = render("cli.config_invalid", file=source or "(OUTREACH_CONFIG)", count=len(error.problems))
        return "\n".join([head, *(f"  {p}" for p in error.problems)])
    chain = _chain(error)
    names = {type(e).__name__ for e in chain}
    if isinstance(error, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
        return render("cli.db_bad_url", url=_safe_url(url))
    if "InvalidCatalogNameError" in names:
        return render("cli.db_missing", name=_database_name(url), url=_safe_url(url))
    for e in chain:
        refused = isinstance(e, ConnectionRefusedError | TimeoutError)
        unreachable = isinstance(e, OSError) and e.filename is None and "connect" in str(e).lower()
        if refused or unreachable or type(e).__name__ == "gaierror":
            return render("cli.db_refused", url=_safe_url(url), reason=scrub(_reason(e)))
    if isinstance(error, sa_exc.OperationalError | sa_exc.DBAPIError | sa_exc.InterfaceError):
        return render("cli.db_error", url=_safe_url(url), reason=scrub(_reason(error.orig or error)))
    if isinstance(error, OSError) and error.filename is not None:
        return render("cli.file_error", file=error.filename, reason=error.strerror or type(error).__name__)
    if isinstance(error, UnicodeDecodeError):
        return render("config.not_text")
    return None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def _quiet_broken_pipe() -> int:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail loudly.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_ERROR


def _quiet_closed_loop_threads() -> None:
    """aiosqlite's worker thread reports a failed connection to a loop that ``asyncio.run`` has
    already closed (after we reported the error): that second report is noise, not a new error."""
    previous = threading.excepthook

    def hook(hook_args: threading.ExceptHookArgs) -> None:
        if isinstance(hook_args.exc_value, RuntimeError) and "Event loop is closed" in str(
            hook_args.exc_value
        ):
            return
        previous(hook_args)

    threading.excepthook = hook


def run_reporting(command: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """Run a subcommand; known operator errors become one line on stderr."""
    _quiet_closed_loop_threads()
    try:
        code = int(command(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print(render("cli.interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        source = getattr(args, "config", None) or getattr(args, "file", None)
        message = explain(error, source, args.settings().database_url)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return EXIT_ERROR
