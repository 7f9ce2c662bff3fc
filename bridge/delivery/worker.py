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
"""

from __future__ import annotations

import sys
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker import BaseWorker, SimpleWorker, Worker, WorkerStatus

from bridge import hydrate
from bridge.delivery.jobs import sweep
from bridge.delivery.runtime import STOPPING, get_runtime
from bridge.errors import ConfigError
from bridge.log import get_logger
from bridge.settings import Settings

log = get_logger("bridge.delivery")


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

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # Reconcile is scheduled with RQ's own scheduler (bridge/reconcile.py): run it
        # in the workers whenever reconcile is configured, without a new process type.
        if _reconcile_on(get_runtime().settings):
            kwargs["with_scheduler"] = True
        return bool(super().work(*args, **kwargs))

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
        # StopRequested in the middle of an HTTP request.
        self.set_state(WorkerStatus.BUSY)
        try:
            summary = sweep(runtime)
            if summary["sent"] or summary["failed"] or summary["recovered"] or summary["kicked"]:
                log.info("worker_sweep", **summary)
        except Exception:
            # Redis or the collector down: RQ's own loop reports Redis errors; keep going.
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
            self.set_state(WorkerStatus.IDLE)


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
