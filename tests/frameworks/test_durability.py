"""kill -9 of the server in the middle of a Celery and of an RQ run: no acknowledged job is lost.

Jobs are being enqueued, executed and acknowledged when the server and the workers are killed together. After a
restart every job the producer saw accepted either completes or sits in the framework's own failed place. The
frameworks' recovery intervals are shortened, as documented in docs/frameworks.md: kombu's visibility timeout (with
late acknowledgement, so a message in flight is redelivered), and RQ's registry maintenance, run at once with a time
past the dead worker's heartbeat TTL instead of a minute later. The oracle is redis-server with `appendfsync always`:
the same invariants must hold on both.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_redis, start_respq
from tests.frameworks.helpers import Workers, eventually

JOBS = 60
KILL_AFTER = 15  # completed jobs seen before the crash
RECOVERY_TIMEOUT = 20.0
# kombu's Redis transport takes a message with BRPOP and records it as unacknowledged with a second command: a crash
# between the two loses it, on Redis as well. The worker has one consumer connection, so one message at most.
KOMBU_WINDOW = 1


class Durable:
    """A server with every acknowledged write on disk, restartable on its data directory."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        self.kind, self.data_dir = kind, data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = self._start()

    def _start(self) -> ServerProcess:
        if self.kind == "respq":
            return start_respq(self.data_dir)  # appendfsync always is respq's default
        return start_redis("--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.process.port}/0"

    def crash_and_restart(self) -> None:
        self.process.stop()  # SIGKILL
        self.process = self._start()


@pytest.fixture(params=["respq", "redis"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Durable]:
    server = Durable(str(request.param), tmp_path / "server-data")
    try:
        yield server
    finally:
        server.process.stop()


def _produce(enqueue: Callable[[int], str]) -> tuple[list[str], threading.Thread]:
    """Enqueues until the server goes away; the ids returned are the jobs the producer saw accepted."""
    accepted: list[str] = []

    def run() -> None:
        for n in range(JOBS):
            try:
                accepted.append(enqueue(n))
            except Exception:  # the crash: this job and the rest were not acknowledged
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return accepted, thread


def _crash(durable: Durable, workers: Workers, producer: threading.Thread) -> None:
    durable.crash_and_restart()
    for worker in workers.started:
        worker.kill()
    producer.join(30)
    assert not producer.is_alive()


def test_celery_run_survives_kill_9(durable: Durable, workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"CELERY_ACKS_LATE": "1", "CELERY_VISIBILITY_TIMEOUT": "1"}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)

    def app_for(url: str):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("CELERY_URL", url)
        module = importlib.reload(importlib.import_module("tests.frameworks.apps.celery_app"))
        module.app.conf.broker_connection_max_retries = 0
        module.app.conf.task_publish_retry = False
        return module

    def start_worker(url: str) -> None:
        workers.python("-m", "celery", "-A", "tests.frameworks.apps.celery_app", "worker", "--loglevel", "INFO",
                       "--concurrency", "2", "--pool", "threads", env={**settings, "CELERY_URL": url})

    app = app_for(durable.url)
    start_worker(durable.url)
    accepted, producer = _produce(lambda n: app.record.delay(f"job-{n}").id)
    done_before = eventually(
        lambda: (done := [i for i in list(accepted) if app.app.AsyncResult(i).state == "SUCCESS"])
        and len(done) >= KILL_AFTER and done, what="jobs completing before the crash")
    _crash(durable, workers, producer)

    app = app_for(durable.url)
    start_worker(durable.url)

    def outcomes() -> dict[str, str]:
        return {i: app.app.AsyncResult(i).state for i in accepted}

    raw = redis.Redis.from_url(durable.url, socket_timeout=10)  # kombu's own keys, observed only

    def settled() -> bool:
        """Nothing left queued or unacknowledged (redelivered after the visibility timeout), nothing running."""
        unfinished = [i for i, state in outcomes().items() if state not in ("SUCCESS", "FAILURE")]
        return raw.llen("celery") == 0 and raw.hlen("unacked") == 0 and len(unfinished) <= KOMBU_WINDOW

    eventually(settled, timeout=RECOVERY_TIMEOUT, what="every accepted job run")
    states = outcomes()
    assert all(states[i] == "SUCCESS" for i in done_before)  # type: ignore[union-attr]
    # The tasks cannot fail: every accepted one completes, but for a message in kombu's window.
    lost = [i for i, state in states.items() if state != "SUCCESS"]
    assert len(lost) <= KOMBU_WINDOW, states
    assert len(accepted) >= KILL_AFTER


def test_rq_run_survives_kill_9(durable: Durable, workers: Workers) -> None:
    from rq import Queue
    from rq.job import Job, JobStatus
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from tests.frameworks.apps import rq_jobs

    def queue_for(url: str) -> Queue:
        return Queue("default", connection=redis.Redis.from_url(url, socket_timeout=5))

    def start_worker(url: str) -> None:
        workers.python("-m", "rq.cli", "worker", "--url", url, "-w", "rq.worker.SimpleWorker", "default")

    queue = queue_for(durable.url)
    start_worker(durable.url)
    accepted, producer = _produce(lambda n: queue.enqueue(rq_jobs.record, f"job-{n}").id)

    def finished(q: Queue) -> list[str]:
        statuses = Job.fetch_many(list(accepted), connection=q.connection)
        return [job.id for job in statuses if job is not None and job.get_status(refresh=False) == JobStatus.FINISHED]

    done_before = eventually(lambda: (done := finished(queue)) and len(done) >= KILL_AFTER and done,
                             what="jobs completing before the crash")
    _crash(durable, workers, producer)

    queue = queue_for(durable.url)
    # RQ's maintenance moves a dead worker's jobs to the failed registry once its heartbeat TTL (60 s and more) runs
    # out: run it now with a time past that TTL.
    StartedJobRegistry(queue=queue).cleanup(timestamp=10**10)
    start_worker(durable.url)

    def outcomes() -> dict[str, str]:
        # A job the dead worker had moved to the intermediate queue but not yet registered as started stays there:
        # RQ's maintenance fails it once it has seen it for a minute. It is RQ's own place, not a lost job.
        failed = set(FailedJobRegistry(queue=queue).get_job_ids()) | set(queue.intermediate_queue.get_job_ids())
        jobs = Job.fetch_many(list(accepted), connection=queue.connection)
        return {
            i: "failed" if i in failed else ("completed" if job and job.get_status() == JobStatus.FINISHED else "open")
            for i, job in zip(accepted, jobs, strict=True)
        }

    try:
        eventually(lambda: "open" not in outcomes().values(), timeout=RECOVERY_TIMEOUT,
                   what="every accepted job completed or in the failed registry")
    except AssertionError:
        still_open = [i for i, outcome in outcomes().items() if outcome == "open"]
        jobs = Job.fetch_many(still_open, connection=queue.connection)
        states = [(i, job.get_status() if job else None) for i, job in zip(still_open, jobs, strict=True)]
        raise AssertionError(f"accepted jobs neither completed nor failed: {states}") from None
    classes = outcomes()
    assert all(classes[i] == "completed" for i in done_before)  # type: ignore[union-attr]
    assert set(classes.values()) <= {"completed", "failed"}
    assert len(accepted) >= KILL_AFTER
