"""The runtime: what runs while sim serves, owned by one task.

Order matters and is kept in one place: database location → pool → schema →
HTTP client → recorder → sender workers → supervisor; shut down in reverse, each step bounded.

``halt()`` comes first on a shutdown (``sim serve`` calls it from its SIGTERM/SIGINT
handler, before hypercorn drains its connections): from that moment sim delivers
nothing and the bundled sink stores nothing; ``shutdown()`` then stops the rest.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import trio

from sim.db import Database, attempts, open_database, outbox
from sim.db.fleet import OUTBOX_CHANNEL, USERS_CHANNEL
from sim.db.listener import Listener
from sim.errors import DatabaseUnavailable, is_only
from sim.metrics import Metrics
from sim.pipeline.attempt_log import AttemptLog
from sim.pipeline.breaker import Breaker
from sim.pipeline.content import ContentProvider
from sim.pipeline.content.factory import content_provider, llm_http_client
from sim.pipeline.delivery import Deliverer
from sim.pipeline.gone import GoneStopper
from sim.pipeline.recorder import Recorder
from sim.pipeline.retry import RetryPolicy
from sim.pipeline.sender import Sender
from sim.pipeline.supervisor import Supervisor
from sim.process import tune_process
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
        self.recorder: Recorder | None = None
        #: the main app's circuit breaker and the attempt log (with the pipeline only)
        self.breaker: Breaker | None = None
        self.attempt_log: AttemptLog | None = None
        self._db: Database | None = None
        self._supervisor: Supervisor | None = None
        self._sender: Sender | None = None
        #: set by ``halt()``: nothing is delivered, and the bundled sink stores nothing
        self.halted = False
        #: the LISTEN connection's owner while the pipeline runs
        self.listener: Listener | None = None
        self._stop = trio.Event()
        self._done = trio.Event()
        #: set when the runtime ended with an error while serving: /healthz then fails
        self.failure: BaseException | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise DatabaseUnavailable("sim is not started")
        return self._db

    @property
    def db_or_none(self) -> Database | None:
        """The database while sim runs, else None (``db`` raises instead)."""
        return self._db

    @property
    def instance_id(self) -> uuid.UUID | None:
        """This instance's id in the fleet (None without the pipeline)."""
        return self._supervisor.instance_id if self._supervisor is not None else None

    def readiness(self) -> dict[str, Any]:
        """``/readyz`` details: the main app's circuit (its being open is not sim unready)."""
        return {} if self.breaker is None else {"circuit": self.breaker.snapshot()}

    def pipeline(self) -> Supervisor:
        if self._supervisor is None:
            raise DatabaseUnavailable("the demo pipeline is not running")
        return self._supervisor

    async def run(
        self, *, task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start everything, report started, run until ``stop()``, then shut down."""
        s = self.settings
        tune_process(s)
        self._stop, self._done, self.failure = trio.Event(), trio.Event(), None
        if not s.api_token:
            log.warning("SIM_API_TOKEN is not set: the /v1 API is open to anyone who can reach it")
        try:
            async with open_database(s) as db:
                self._db = db
                if self.with_pipeline:
                    await self._run_pipeline(db, task_status)
                else:
                    await self._serve(task_status)
        except BaseException as exc:
            self.failure = exc
            if not is_only(exc, trio.Cancelled):
                log.critical("sim's runtime failed: %r", exc, exc_info=exc)
            raise
        finally:
            self._db = None
            self.halted = False  # a halt lasts until this run ends (one before it counts)
            self._done.set()

    async def _run_pipeline(self, db: Database, task_status: trio.TaskStatus[Runtime]) -> None:
        s = self.settings
        # Delivering to the bundled sink, sim is its own server's client. With connections
        # to itself kept alive, the requests in flight on them at SIGTERM went unanswered
        # until hypercorn's graceful_timeout ran out (10 s), and sim's own shutdown only
        # starts after that wait; so no connection to itself outlives its request.
        keepalive = s.http_concurrency if s.main_app_url else 0
        limits = httpx.Limits(
            max_connections=s.http_concurrency, max_keepalive_connections=keepalive
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
            attempt_log = None
            if s.attempt_log_max_rows:  # 0 turns it off
                attempt_log = AttemptLog(
                    s,
                    self.metrics,
                    partial(attempts.insert_attempts, db),
                    partial(
                        attempts.prune_attempts,
                        db,
                        s.attempt_log_max_rows,
                        s.attempt_log_max_age_s,
                    ),
                )
            gone = GoneStopper(db)
            self.breaker = Breaker(s, self.metrics)
            deliverer = Deliverer(
                client,
                s,
                self.metrics,
                breaker=self.breaker,
                attempt_log=attempt_log,
                on_gone=gone,
            )
            sender = self._sender = Sender(db, s, deliverer, recorder)
            if self.halted:  # halted while starting
                sender.halt()
            supervisor = Supervisor(db, s, self.metrics, sender, provider_factory=factory)
            gone.supervisor = supervisor
            async with trio.open_nursery() as recording:
                self.recorder = await recording.start(recorder.run)
                if attempt_log is not None:
                    self.attempt_log = await recording.start(attempt_log.run)
                try:
                    async with trio.open_nursery() as supervising:
                        await supervising.start(sender.run)  # every user's deliveries
                        await supervising.start(gone.run)
                        self._supervisor = await supervising.start(supervisor.run)
                        self.listener = await supervising.start(_listener(db, s, supervisor).run)
                        log.info("Delivering to %s", mask_url(deliverer.url))
                        await self._serve(task_status)
                        supervising.cancel_scope.cancel()
                finally:
                    self._supervisor = None
                    self._sender = None
                    self.listener = None
                    recorder.close()  # flushes what it holds, then returns
                    if attempt_log is not None:
                        attempt_log.close()
                    recording.cancel_scope.deadline = trio.current_time() + s.batch_timeout_s

    async def _serve(self, task_status: trio.TaskStatus[Runtime]) -> None:
        task_status.started(self)
        log.info("sim started")
        await self._stop.wait()
        log.info("sim stopping")

    def halt(self) -> None:
        """Deliver nothing more, at once; the bundled sink stores nothing more either.

        Safe to call from a signal handler (plain assignments, ``Sender.halt``). The
        senders' in-flight requests are cancelled and their rows given back; the rest
        of sim (API, generation, recording) runs on until ``shutdown``.
        """
        if self.halted:
            return
        self.halted = True
        sender = self._sender
        if sender is not None:
            sender.halt()

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self, timeout_s: float) -> None:
        """Halt, stop and wait (at most ``timeout_s``) for everything to close."""
        self.halt()
        self.stop()
        with trio.move_on_after(timeout_s) as scope:
            await self._done.wait()
        if scope.cancelled_caught:
            log.error("sim did not stop within %.1fs", timeout_s)


def _listener(db: Database, s: Settings, supervisor: Supervisor) -> Listener:
    """Notifications to the supervisor: users changed (ownership round), rows due."""
    rng = random.Random()
    return Listener(
        db,
        {USERS_CHANNEL: supervisor.poke, OUTBOX_CHANNEL: supervisor.wake_senders},
        debounce_s=s.notify_debounce_s,
        on_connect=supervisor.resync,
        backoff=lambda attempt: RetryPolicy.for_database(s).delay_s(attempt, rng),
    )
