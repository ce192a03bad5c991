"""One async server for every enabled channel (``outreach-bot serve``).

Starlette hosts each channel adapter's routes (Telegram webhook, WeChat callback, …), ``/healthz``
(liveness: the process serves) and ``/readyz`` (readiness: the database answers and every channel
started; 503 with what is wrong otherwise); its lifespan builds the shared services, starts the
adapters, one outbox drain loop per sending channel, and the periodic jobs (APScheduler) that features
register in ``bot/jobs.py``. A channel that cannot start is reported, logged in one line and left out;
the others serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app import App, build_app
from bot.channels.registry import enabled_adapters
from bot.http_guard import guard_app, limits_from, uvicorn_options
from bot.jobs import PeriodicJob, default_jobs
from bot.settings import Settings
from handlers.kernel.channel_ports import ChannelAdapter
from handlers.kernel.context import Services
from handlers.kernel.conversation import Conversation
from handlers.kernel.outbox import drain
from handlers.kernel.ports import Sender
from handlers.kernel.privacy import mask_log

log = logging.getLogger(__name__)

IDLE_POLL = 0.5  # seconds between outbox polls when nothing woke the loop
READY_TIMEOUT = 3.0  # seconds /readyz waits for the database


@dataclass(frozen=True)
class AdapterContext:
    """What the server hands a channel adapter at start (``handlers.kernel.channel_ports.AdapterContext``)."""

    services: Services
    conversation: Conversation
    wake: Callable[[str], None]
    wake_all: Callable[[], None]


@dataclass
class Server:
    settings: Settings
    adapters: list[ChannelAdapter]
    jobs: list[PeriodicJob]
    app: App | None = None
    ready: bool = False
    _wake: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _scheduler: AsyncIOScheduler | None = None
    _not_started: dict[str, str] = field(default_factory=dict)  # channel → why it could not start

    def wake(self, channel: str) -> None:
        """Ask the channel's drain loop to look at the outbox now (after a message was handled)."""
        event = self._wake.get(channel)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _drain_loop(self, sender: Sender) -> None:
        assert self.app is not None
        event = self._wake.setdefault(sender.channel, asyncio.Event())
        while True:
            if not getattr(sender, "ready", True):  # its platform is not reachable yet
                await asyncio.sleep(IDLE_POLL)
                continue
            try:
                services = self.app.services
                sent = await drain(services.sessions, sender, services.clock, settings=self.settings.outbox)
            except Exception:
                log.exception("outbox drain failed for %s", sender.channel)
                sent = 0
            if sent:
                continue
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), IDLE_POLL)

    async def _run_job(self, job: PeriodicJob) -> None:
        assert self.app is not None
        try:
            await job.run(self.app)
            self.wake_all()
        except Exception:
            log.exception("periodic job %s failed", job.name)

    @contextlib.asynccontextmanager
    async def lifespan(self, _starlette: Starlette) -> AsyncIterator[None]:
        channels = frozenset(a.name for a in self.adapters)
        self.app = await build_app(self.settings, channels)
        context = AdapterContext(self.app.services, self.app.conversation, self.wake, self.wake_all)
        try:
            for adapter in self.adapters:
                try:
                    await adapter.start(context)
                except Exception as exc:
                    reason = _one_line(exc)
                    self._not_started[adapter.name] = f"failed: {reason}"
                    log.error("channel %s could not start (%s); serving the others", adapter.name, reason)
            for adapter in self.adapters:
                if adapter.name in self._not_started:
                    continue
                mass = getattr(adapter, "mass_sender", None)  # a channel with a mass delivery method
                if mass is not None and self.app.mass is None:
                    self.app.mass = mass()
                for sender in adapter.senders():
                    self._wake.setdefault(sender.channel, asyncio.Event())
                    self._tasks.append(
                        asyncio.create_task(self._drain_loop(sender), name=f"drain-{sender.channel}")
                    )
            if self.jobs:
                self._scheduler = AsyncIOScheduler(timezone="UTC")
                for job in self.jobs:
                    self._scheduler.add_job(
                        self._run_job,
                        "interval",
                        seconds=job.seconds,
                        args=[job],
                        id=job.name,
                        coalesce=True,
                        max_instances=1,
                    )
                self._scheduler.start()
            # Everything built so far lives as long as the process (the community, jieba's
            # dictionaries: hundreds of thousands of objects). Out of the collector's sight, a full
            # collection takes well under a millisecond instead of a third of a second, which would
            # stall every request in flight.
            gc.collect()
            gc.freeze()
            self.ready = True
            log.info("serving channels: %s", ", ".join(sorted(channels)) or "none")
            yield
        finally:
            self.ready = False
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for adapter in self.adapters:
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("stopping %s failed", adapter.name)
            await self.app.close()

    async def healthz(self, _request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok", "channels": sorted(a.name for a in self.adapters)})

    def channel_status(self, adapter: ChannelAdapter) -> str:
        if adapter.name in self._not_started:
            return self._not_started[adapter.name]
        status = getattr(adapter, "status", None)
        return str(status()) if callable(status) else "ok"

    async def database_status(self) -> str:
        assert self.app is not None
        try:
            async with self.app.services.sessions() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), READY_TIMEOUT)
        except Exception as exc:
            return f"unreachable: {_one_line(exc)}"
        return "ok"

    async def readyz(self, _request: Request) -> Response:
        """Whether this process can do its work now: {"database": "ok", "telegram": "starting: …"}."""
        if not self.ready or self.app is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        checks = {"database": await self.database_status()}
        checks.update((a.name, self.channel_status(a)) for a in self.adapters)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(checks, status_code=200 if ready else 503)

    def asgi(self) -> ASGIApp:
        routes: list[BaseRoute] = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
        ]
        hot: dict[str, ASGIApp] = {}
        for adapter in self.adapters:
            routes.extend(adapter.routes())
            hot.update(getattr(adapter, "hot_routes", dict)())
        app = Starlette(routes=routes, lifespan=self.lifespan)
        return HotPaths(app, hot) if hot else app


def _one_line(exc: BaseException) -> str:
    """An error for the log or /readyz: type and first line, masked (no token, no password)."""
    lines = str(exc).strip().splitlines()
    return mask_log(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)[:200]


class HotPaths:
    """Requests for a hot path (a platform callback with a deadline, e.g. ``/wechat``) go straight to
    its bare ASGI app, without Starlette's middleware and router (a fifth of such a request's CPU);
    everything else, and the lifespan, through Starlette. An adapter offers them with
    ``hot_routes() -> {path: asgi_app}``; the app answers every method itself."""

    def __init__(self, app: ASGIApp, hot: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.hot = dict(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = self.hot.get(scope["path"])
            if target is not None:
                await target(scope, receive, send)
                return
        await self.app(scope, receive, send)


def make_server(settings: Settings) -> Server:
    return Server(settings=settings, adapters=enabled_adapters(settings), jobs=list(default_jobs(settings)))


def create_asgi() -> ASGIApp:
    """The uvicorn factory for ``serve --workers N``: each worker process builds its own server from
    the environment (its composition root: the settings tree is built here, once per worker); the
    database is what they share."""
    from bot import http_guard, logfilter
    from bot.settings import load_settings

    settings = load_settings()
    http_guard.use_limits(limits_from(settings))
    if not logging.getLogger().handlers:  # a spawned worker never ran the CLI's logging set-up
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    logfilter.install(settings.log_level)  # this worker's uvicorn handlers are configured by now
    return guard_app(make_server(settings).asgi())


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def http_protocol() -> str:
    """uvicorn's HTTP parser: httptools (C, a dependency) when installed, h11 otherwise."""
    return "httptools" if _installed("httptools") else "h11"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop (a dependency, not on Windows) when installed, asyncio's otherwise."""
    if sys.platform == "win32" or not _installed("uvloop"):
        return None
    import uvloop

    return uvloop.new_event_loop


def _access_log(settings: Settings) -> bool:
    """uvicorn's access log lines are INFO; above that it would format them for nothing. The lines
    never show a callback's query string (``bot.http_guard``)."""
    return logging.getLevelName(settings.log_level.upper()) in (logging.DEBUG, logging.INFO)


async def prepare_database(settings: Settings) -> None:
    app = await build_app(settings, frozenset())
    await app.close()


def serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    # The schema and the community are prepared once, here, before the workers start together.
    asyncio.run(prepare_database(settings))
    uvicorn.run(
        "bot.server:create_asgi",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        log_level=settings.log_level.lower(),
        loop="uvloop" if loop_factory() is not None else "asyncio",
        **uvicorn_options(_access_log(settings), limits_from(settings)),
    )


async def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    server = make_server(settings)
    config = uvicorn.Config(
        guard_app(server.asgi()),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        **uvicorn_options(_access_log(settings), limits_from(settings)),
    )
    from bot import logfilter

    logfilter.install(settings.log_level)  # uvicorn.Config has just configured uvicorn's handlers
    await uvicorn.Server(config).serve()


def run_serve(settings: Settings, host: str, port: int) -> None:
    """``serve`` in one process, on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(settings, host, port))
