"""The runtime: what runs while sim serves, owned by one task.

Order matters and is kept in one place: database location → pool → schema →
HTTP client → recorder → supervisor; shut down in reverse, each step bounded.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from functools import partial

import httpx
import trio

from sim.db import Database, DatabaseLocation, apply_migrations, locate_database, outbox
from sim.errors import DatabaseUnavailable
from sim.metrics import Metrics
from sim.pipeline.content import ContentProvider
from sim.pipeline.content.factory import content_provider, llm_http_client
from sim.pipeline.delivery import Deliverer
from sim.pipeline.recorder import Recorder
from sim.pipeline.sender import Sender
from sim.pipeline.supervisor import Supervisor
from sim.settings import Settings, mask_url

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    """Owns the database and, unless ``pipeline=False``, the delivery pipeline."""

    def __init__(
        self,
        settings: Settings,
        *,
        pipeline: bool = True,
        provider_factory: Callable[[], ContentProvider] | None = None,  # None: from settings
    ) -> None:
        self.settings = settings
        self.with_pipeline = pipeline
        self.provider_factory = provider_factory
        self.metrics = Metrics()
        self.location: DatabaseLocation | None = None
        self.recorder: Recorder | None = None
        self._db: Database | None = None
        self._supervisor: Supervisor | None = None
        self._stop = trio.Event()
        self._done = trio.Event()
        #: set when the runtime ended with an error while serving: /healthz then fails
        self.failure: BaseException | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise DatabaseUnavailable("sim is not started")
        return self._db

    def pipeline(self) -> Supervisor:
        if self._supervisor is None:
            raise DatabaseUnavailable("the demo pipeline is not running")
        return self._supervisor

    async def run(
        self, *, task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start everything, report started, run until ``stop()``, then shut down."""
        s = self.settings
        self._stop, self._done, self.failure = trio.Event(), trio.Event(), None
        if not s.api_token:
            log.warning("SIM_API_TOKEN is not set: the /v1 API is open to anyone who can reach it")
        try:
            self.location = await locate_database(s)
            try:
                async with trio.open_nursery() as nursery:
                    db = Database(s, self.location.conninfo)
                    self._db = await nursery.start(db.run)
                    try:
                        await apply_migrations(db)
                        if self.with_pipeline:
                            await self._run_pipeline(db, task_status)
                        else:
                            await self._serve(task_status)
                    finally:
                        db.close()
            finally:
                with trio.CancelScope(shield=True):
                    location, self.location = self.location, None
                    if location is not None:
                        await trio.to_thread.run_sync(location.release)
        except BaseException as exc:
            self.failure = exc
            if not _only_cancelled(exc):
                log.critical("sim's runtime failed: %r", exc, exc_info=exc)
            raise
        finally:
            self._db = None
            self._done.set()

    async def _run_pipeline(self, db: Database, task_status: trio.TaskStatus[Runtime]) -> None:
        s = self.settings
        limits = httpx.Limits(
            max_connections=s.http_concurrency, max_keepalive_connections=s.http_concurrency
        )
        timeout = httpx.Timeout(s.request_timeout_s)
        async with (
            httpx.AsyncClient(timeout=timeout, limits=limits) as client,
            llm_http_client(s) as llm_http,
        ):
            factory = self.provider_factory or partial(content_provider, s, self.metrics, llm_http)
            supervisor: Supervisor | None = None

            def on_recorded(per_user: dict[str, Counter[str]]) -> None:
                if supervisor is not None:
                    supervisor.on_recorded(per_user)

            recorder = Recorder(s, self.metrics, partial(outbox.record, db), listener=on_recorded)
            deliverer = Deliverer(client, s, self.metrics)
            sender = Sender(db, s, deliverer, recorder)
            supervisor = Supervisor(db, s, self.metrics, sender, provider_factory=factory)
            async with trio.open_nursery() as recording:
                self.recorder = await recording.start(recorder.run)
                try:
                    async with trio.open_nursery() as supervising:
                        self._supervisor = await supervising.start(supervisor.run)
                        log.info("Delivering to %s", mask_url(deliverer.url))
                        await self._serve(task_status)
                        supervising.cancel_scope.cancel()
                finally:
                    self._supervisor = None
                    recorder.close()  # flushes what it holds, then returns
                    recording.cancel_scope.deadline = trio.current_time() + s.batch_timeout_s

    async def _serve(self, task_status: trio.TaskStatus[Runtime]) -> None:
        task_status.started(self)
        log.info("sim started")
        await self._stop.wait()
        log.info("sim stopping")

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self, timeout_s: float) -> None:
        """Stop and wait (at most ``timeout_s``) for everything to close."""
        self.stop()
        with trio.move_on_after(timeout_s) as scope:
            await self._done.wait()
        if scope.cancelled_caught:
            log.error("sim did not stop within %.1fs", timeout_s)


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(e) for e in exc.exceptions)
    return isinstance(exc, trio.Cancelled)
