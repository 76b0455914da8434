"""arq: a real `arq` worker, driven through arq's pool and Job API (application: apps/arq_app.py). arq's queue is a
sorted set scored by due time, so everything here needs sorted sets."""

from __future__ import annotations

import asyncio
import time

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import JobStatus

from tests.frameworks.helpers import SCENARIO_TIMEOUT, Workers

SETTINGS = "tests.frameworks.apps.arq_app.WorkerSettings"


def _worker(workers: Workers, url: str) -> None:
    workers.python("-m", "arq", SETTINGS, env={"ARQ_URL": url})


def test_enqueue_results_defer_retries_and_unique_ids(url: str, workers: Workers) -> None:
    async def scenario() -> None:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            added = await pool.enqueue_job("add", 2, 3, _job_id="add-once")
            assert await pool.enqueue_job("add", 9, 9, _job_id="add-once") is None  # the id is taken
            failed = await pool.enqueue_job("fail", "arq job failed on purpose")
            retried = await pool.enqueue_job("flaky", 2)
            started = time.monotonic()
            deferred = await pool.enqueue_job("add", 40, 2, _defer_by=1)
            assert [await job.status() for job in (added, deferred)] == [JobStatus.queued, JobStatus.deferred]
            _worker(workers, url)
            assert await added.result(timeout=SCENARIO_TIMEOUT) == 5
            with pytest.raises(ValueError, match="arq job failed on purpose"):
                await failed.result(timeout=SCENARIO_TIMEOUT)
            assert await retried.result(timeout=SCENARIO_TIMEOUT) == 3
            assert await deferred.result(timeout=SCENARIO_TIMEOUT) == 42
            assert time.monotonic() - started >= 1.0
            info = await retried.result_info()
            assert (info.success, info.job_try, info.function) == (True, 3, "flaky")
            assert await added.status() == JobStatus.complete
            # A finished job's result still holds its id: enqueueing it again is refused while the result is kept.
            assert await pool.enqueue_job("add", 1, 1, _job_id="add-once") is None
            assert await pool.queued_jobs() == []
        finally:
            await pool.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 2 * SCENARIO_TIMEOUT))


def test_abort_a_running_job(url: str, workers: Workers) -> None:
    async def scenario() -> None:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            _worker(workers, url)
            job = await pool.enqueue_job("forever")
            for _ in range(int(SCENARIO_TIMEOUT / 0.05)):
                if await job.status() == JobStatus.in_progress:
                    break
                await asyncio.sleep(0.05)
            assert await job.status() == JobStatus.in_progress
            assert await job.abort(timeout=SCENARIO_TIMEOUT, poll_delay=0.05) is True
            info = await job.result_info()
            assert info is not None and not info.success
        finally:
            await pool.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 2 * SCENARIO_TIMEOUT))


