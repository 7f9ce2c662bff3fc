"""``BridgeWorker``: an RQ ``SimpleWorker`` that also sweeps while idle.

Run it with the ordinary RQ command line::

    rq worker --worker-class bridge.delivery.worker.BridgeWorker --url "$REDIS_URL" bridge

Why a SimpleWorker: the drain job is long-lived work on a shared buffer, not one job
per event, so forking per job would only add ~10 ms and reload the mappings each time;
in-process it reuses the parsed mappings and the HTTP connection pool. Measured end to
end (bench/bench_e2e.py, ``--setups simple:2,fork:2``) the forking variant
:class:`ForkingBridgeWorker` is no faster; see docs/delivery.md.

Why a custom class: instead of blocking on the queue for minutes, it blocks for
``BRIDGE_WORKER_TICK`` seconds at a time and runs :func:`bridge.delivery.jobs.sweep`
in between: the flush-interval time trigger, retries that came due, recovery of work
a SIGKILLed worker leased, and the safety net for a drain job that intake never
enqueued. No ``--with-scheduler`` process is needed.

On SIGTERM it finishes the current job, which notices :data:`STOPPING` between two
chunks, completes or hands back what it holds, and returns within a few seconds.

Why it outlives Redis trouble: RQ's own loop quits on the first Redis error it does
not expect (a timeout, a connection lost while a job ends, ``OOM`` when Redis is full
under ``noeviction``), and cannot even register while Redis refuses writes. This class
runs RQ's loop again after such an exit, waiting :data:`RESTART_WAIT_MIN` seconds at
first and doubling up to :data:`RESTART_WAIT_MAX`, so a worker rides out an outage or
a full Redis and resumes by itself; the leases of whatever it held bring the work back.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from redis.exceptions import RedisError
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import BaseWorker, SimpleWorker, Worker, WorkerStatus

from bridge import hydrate
from bridge.delivery import outage
from bridge.delivery.jobs import sweep
from bridge.delivery.runtime import STOPPING, get_runtime
from bridge.errors import ConfigError
from bridge.log import get_logger
from bridge.settings import Settings

log = get_logger("bridge.delivery")

#: Seconds before RQ's loop runs again after it quit on an error (doubles each time
#: in a row, up to :data:`RESTART_WAIT_MAX`).
RESTART_WAIT_MIN = 0.5

#: Longest wait between two restarts of RQ's loop while Redis stays unavailable.
RESTART_WAIT_MAX = 10.0


class _SweepMixin(BaseWorker):
    """The delivery sweep between short blocking dequeues (shared by both classes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Settings and mapping files are checked now, one line per problem and exit 2,
        # rather than at the first job (where a bad file would fail every drain).
        try:
            get_runtime().mapper  # noqa: B018 (loads and compiles the mappings)
        except ConfigError as exc:
            print(f"bridge: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        super().__init__(*args, **kwargs)

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop, run again whenever it quits on an error rather than on
        request (see the module docstring); returns whether any job ran."""
        # Reconcile is scheduled with RQ's own scheduler (bridge/reconcile.py): run it
        # in the workers whenever reconcile is configured, without a new process type.
        if _reconcile_on(get_runtime().settings):
            kwargs["with_scheduler"] = True
        worked = False
        wait = RESTART_WAIT_MIN
        restarts = 0
        while True:
            started = time.monotonic()
            try:
                if restarts:
                    # The loop that quit may have left this worker's key "alive" (Redis
                    # was down when it registered its death): the name is ours to reuse.
                    self.connection.delete(self.key)
                worked = super().work(burst, *args, **kwargs) or worked
                error = "rq's loop quit"  # on an error it logged; a stop returns below
            except StopRequested:
                return worked
            except Exception as exc:  # the worker must outlive it
                # Registering or tearing down while Redis fails raises RedisError; a
                # connection Redis dropped can also surface as another type from deep in
                # redis-py (seen: TypeError from the socket poller). Either way the worker
                # waits and runs the loop again rather than exiting with work in Redis.
                error = f"{type(exc).__name__}: {exc}"
            if burst or self._stop_requested or STOPPING.is_set():
                return worked
            if kwargs.get("max_jobs") or kwargs.get("max_idle_time"):
                return worked
            if time.monotonic() - started > 60:
                wait = RESTART_WAIT_MIN  # it ran fine for a while: a new incident
            log.warning("worker_restarting", error=error[:300], retry_in=wait)
            self._forget_registration()
            self.set_state_quietly(WorkerStatus.SUSPENDED)  # not BUSY: SIGTERM stops the wait
            try:
                until = time.monotonic() + wait
                self._deliver_meanwhile()
                while not STOPPING.is_set() and time.monotonic() < until:
                    time.sleep(min(0.1, max(0.0, until - time.monotonic())))
            except StopRequested:
                return worked
            if STOPPING.is_set():
                return worked
            wait = min(RESTART_WAIT_MAX, wait * 2)
            restarts += 1

    def _deliver_meanwhile(self) -> None:
        """Send what is due while RQ's loop cannot run. When Redis is full it refuses
        RQ's heartbeats, but the flusher can still send the batches already cut and
        delete each one accepted: that is how a full Redis frees itself once the
        collector is back (see bridge/delivery/flusher.py)."""
        try:
            stats = sweep(get_runtime())
        except StopRequested:
            raise
        except Exception as exc:  # Redis down: nothing to do until it is back
            log.warning("worker_sweep_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        if stats["sent"] or stats["failed"]:
            log.info("worker_sweep", **stats)

    def _forget_registration(self) -> None:
        """Undo what a loop that died half-way left behind: its pub/sub thread (the
        next loop subscribes again) and, if Redis takes it, its worker key."""
        thread: Any = getattr(self, "pubsub_thread", None)  # typed None in rq
        self.pubsub_thread = None
        if thread is not None:
            with contextlib.suppress(Exception):
                thread.stop()
                thread.join(timeout=1)
        if thread is None and self.pubsub is not None:
            # Only without a thread: a stopped thread closes its pub/sub itself when its
            # loop ends, and closing it here as well, while that thread may still be
            # reconnecting (join gives up after 1 s), could hang this thread for good.
            with contextlib.suppress(Exception):
                self.pubsub.close()
        self.pubsub = None
        with contextlib.suppress(RedisError):
            self.connection.delete(self.key)

    def set_state_quietly(self, state: str) -> None:
        """Set the worker state; if Redis cannot take it, only locally."""
        try:
            self.set_state(state)
        except RedisError:
            self._state = state

    def set_shutdown_requested_date(self) -> None:
        # Called from the SIGTERM handler: a Redis error here must not blow up whatever
        # the worker was doing when the signal came.
        with contextlib.suppress(RedisError):
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]

    def handle_warm_shutdown_request(self) -> None:
        STOPPING.set()
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        runtime = get_runtime()
        tick = runtime.settings.worker_tick
        while True:
            self._sweep(runtime)
            if self._stop_requested or STOPPING.is_set():
                return None
            if timeout is None:  # burst mode: one pass, no blocking
                return super().dequeue_job_and_maintain_ttl(None, max_idle_time)
            # max_idle_time makes the parent return None after one empty short wait.
            result = super().dequeue_job_and_maintain_ttl(tick, max_idle_time=tick)  # type: ignore[arg-type]
            if result is not None:
                return result

    def _sweep(self, runtime: Any) -> None:
        # BUSY while sweeping: a SIGTERM then sets _stop_requested instead of raising
        # StopRequested in the middle of an HTTP request. The state writes are inside
        # the error handling too: Redis may fail at any of them.
        self.set_state_quietly(WorkerStatus.BUSY)
        try:
            summary = sweep(runtime)
            if summary["sent"] or summary["failed"] or summary["recovered"] or summary["kicked"]:
                log.info("worker_sweep", **summary)
        except Exception as exc:
            if outage.unavailable(exc):
                # RQ's dequeue, next, waits for Redis with its own backoff.
                log.warning("worker_sweep_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            else:
                log.exception("worker_sweep_failed")
        try:
            if _reconcile_on(runtime.settings):
                from bridge import reconcile

                reconcile.ensure_scheduled(
                    runtime.redis, runtime.settings, runtime.mapper.catalogue
                )
        except Exception:
            log.exception("reconcile_schedule_failed")
        try:
            hydrate.requeue_due(runtime.redis)  # events waiting for Stripe's API
        except Exception:
            log.exception("hydrate_requeue_failed")
        finally:
            self.set_state_quietly(WorkerStatus.IDLE)


def _reconcile_on(settings: Settings) -> bool:
    """``bridge.reconcile.wanted`` without importing it unless needed: it loads intake's
    store (and with it Flask), which a worker otherwise never imports."""
    return settings.stripe_api_key is not None and settings.reconcile_interval > 0


class BridgeWorker(_SweepMixin, SimpleWorker):
    """SimpleWorker + the delivery sweep: the shipped worker class."""


class ForkingBridgeWorker(_SweepMixin, Worker):
    """RQ's forking ``Worker`` + the same sweep; kept for ``bench/bench_e2e.py``.

    The parent sweeps; each drain job runs in a forked work horse, which inherits the
    parsed mappings (built before the fork) and opens its own HTTP connection pool.
    On SIGTERM the parent waits for the horse, which finishes its
    ``BRIDGE_DRAIN_BUDGET`` (it does not see :data:`STOPPING`).
    """

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        get_runtime().mapper  # parse the mappings once, in the parent  # noqa: B018
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        get_runtime().after_fork()
        super().main_work_horse(job, queue)
