"""The no-op jobs bench.frameworks runs, as each framework's worker loads them (RQ by dotted name, Celery with
``-A bench.framework_apps``, arq's function list). The server comes from BENCH_URL."""

from __future__ import annotations

import os
from typing import Any

URL = os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/0")


def noop() -> None:
    """RQ's job: nothing, so that the queue's own traffic is what is measured."""


async def arq_noop(ctx: dict[str, Any]) -> None:
    """arq's job: nothing."""


def celery_app(url: str = URL) -> Any:
    """Kombu's Redis transport, no result backend (no-op tasks whose results nobody reads); defaults otherwise."""
    from celery import Celery

    app = Celery("bench", broker=url)
    app.conf.update(broker_connection_retry_on_startup=True, task_ignore_result=True)

    @app.task(name="noop")
    def celery_noop() -> None:
        """Celery's task: nothing."""

    return app


app = celery_app() if os.environ.get("BENCH_CELERY") == "1" else None  # what `celery -A bench.framework_apps` loads
