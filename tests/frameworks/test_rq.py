"""RQ: real `rq worker` processes (burst with SimpleWorker, and the default forking worker with its scheduler), driven
through RQ's Queue and Job API (job functions: apps/rq_jobs.py). RQ keeps its registries in sorted sets."""

from __future__ import annotations

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from tests.frameworks.apps import rq_jobs
from tests.frameworks.helpers import Workers, eventually


@pytest.fixture
def connection(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10)


def _status(job: Job) -> JobStatus:
    return job.get_status(refresh=True)


def test_burst_worker_results_failures_dependencies_and_timeouts(
    url: str, workers: Workers, connection: redis.Redis
) -> None:
    queue = Queue("default", connection=connection)
    added = queue.enqueue(rq_jobs.add, 2, 3)
    failed = queue.enqueue(rq_jobs.fail, "rq job failed on purpose")
    dependent = queue.enqueue(rq_jobs.add, 10, 20, depends_on=added)
    retried = queue.enqueue(rq_jobs.flaky, "r1", 1, retry=Retry(max=2))
    timed_out = queue.enqueue(rq_jobs.stuck, 30, job_timeout=1)
    assert queue.count == 4  # the dependent job waits in its deferred registry
    assert _status(dependent) == JobStatus.DEFERRED
    workers.python("-m", "rq.cli", "worker", "--burst", "--url", url, "-w", "rq.worker.SimpleWorker", "default")
    # Not the worker's exit: RQ 3.0 with redis-py 8.2 can take up to a minute to leave (its pub/sub thread's 60 s
    # wait), on Redis as on respq. The jobs' states are what counts.
    eventually(lambda: queue.count == 0 and _status(timed_out) == JobStatus.FAILED and _status(retried)
               == JobStatus.FINISHED and _status(dependent) == JobStatus.FINISHED, what="the burst's five jobs")
    assert (added.return_value(refresh=True), dependent.return_value(refresh=True)) == (5, 30)
    assert retried.return_value(refresh=True) == 2
    assert [_status(job) for job in (added, failed, dependent, retried, timed_out)] == [
        JobStatus.FINISHED, JobStatus.FAILED, JobStatus.FINISHED, JobStatus.FINISHED, JobStatus.FAILED]
    assert "ValueError: rq job failed on purpose" in (Job.fetch(failed.id, connection=connection).exc_info or "")
    assert "JobTimeoutException" in (Job.fetch(timed_out.id, connection=connection).exc_info or "")
    assert sorted(FailedJobRegistry(queue=queue).get_job_ids()) == sorted([failed.id, timed_out.id])
    assert sorted(FinishedJobRegistry(queue=queue).get_job_ids()) == sorted([added.id, dependent.id, retried.id])
    assert queue.count == 0

