"""How any process asks for the inbox to be drained: one RQ job, enqueued the same way
by intake (after a burst starts) and by workers (follow-ups, the lost-kick sweep).

The job is named by its import path (:data:`bridge.keys.DRAIN_JOB`), so the web
process enqueues it without importing the delivery code.
"""

from __future__ import annotations

from rq import Queue
from rq.job import Job

from bridge import keys

#: Seconds RQ lets one drain job run; a job works BRIDGE_DRAIN_BUDGET (5 s) and then
#: hands over, so this only catches a hung job.
JOB_TIMEOUT = 300

#: Seconds a failed drain job stays in RQ's failed registry for inspection. Short: the
#: worker log and ``bridge:drain:health`` say why it failed, and a long TTL made every
#: failed job (traceback included) a Redis cost for a week. Failing jobs are spaced by
#: a backoff (bridge.delivery.jobs.DRAIN_BACKOFF_MAX), so at most ~60 are kept per hour.
FAILURE_TTL = 3600


def enqueue_drain(queue: Queue) -> Job:
    """Enqueue one drain job on ``queue`` (results are not kept: the logs have them)."""
    return queue.enqueue(
        keys.DRAIN_JOB, job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=FAILURE_TTL
    )
