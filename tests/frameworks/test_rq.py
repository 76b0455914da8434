"""RQ: real `rq worker` processes (burst with SimpleWorker, and the default forking worker with its scheduler), driven
through RQ's Queue and Job API (job functions: apps/rq_jobs.py). RQ keeps its registries in sorted sets."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

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
    failure_texts = [Job.fetch(job.id, connection=connection).latest_result().exc_string for job in (failed, timed_out)]
    assert "ValueError: rq job failed on purpose" in failure_texts[0]
    assert "JobTimeoutException" in failure_texts[1]
    assert sorted(FailedJobRegistry(queue=queue).get_job_ids()) == sorted([failed.id, timed_out.id])
    assert sorted(FinishedJobRegistry(queue=queue).get_job_ids()) == sorted([added.id, dependent.id, retried.id])
    assert queue.count == 0


def test_queue_empty_and_delete(connection: redis.Redis) -> None:
    """Queue.empty is a Lua script."""
    queue = Queue("default", connection=connection)
    queue.enqueue(rq_jobs.add, 1, 1)
    queue.enqueue(rq_jobs.add, 2, 2)
    assert queue.count == 2
    assert queue.empty() == 2
    assert queue.count == 0
    queue.delete(delete_jobs=True)
    assert "default" not in [q.name for q in Queue.all(connection=connection)]


def test_forking_worker_with_scheduler_runs_delayed_jobs_and_retries(
    url: str, workers: Workers, connection: redis.Redis
) -> None:
    queue = Queue("default", connection=connection)
    delayed = queue.enqueue_in(timedelta(seconds=1), rq_jobs.add, 40, 2)
    assert _status(delayed) == JobStatus.SCHEDULED
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [delayed.id]
    retried = queue.enqueue(rq_jobs.flaky, "r2", 2, retry=Retry(max=3, interval=1))
    forked = queue.enqueue(rq_jobs.pid)
    workers.python("-m", "rq.cli", "worker", "--with-scheduler", "--url", url, "default")
    eventually(lambda: _status(delayed) == JobStatus.FINISHED, what="the scheduled job")
    eventually(lambda: _status(retried) == JobStatus.FINISHED, what="the retried job")
    assert (delayed.return_value(refresh=True), retried.return_value(refresh=True)) == (42, 3)
    eventually(lambda: _status(forked) == JobStatus.FINISHED, what="the forked job")
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    assert len(FinishedJobRegistry(queue=queue)) == 3
