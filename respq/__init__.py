"""respq: a Redis-protocol queue server keeping every list and stream in a segmented log on disk."""

__version__ = "0.1.0"
# The Redis version we answer as: clients (RQ, Sidekiq, redis-py) gate features on it.
REDIS_COMPAT_VERSION = "7.0.15"

# The in-process API (respq/embedded.py), imported on first use: the server's command line does not need it.
_EMBEDDED = frozenset(
    {
        "open",
        "open_async",
        "serve_in_background",
        "Queues",
        "AsyncQueues",
        "Pipeline",
        "AsyncPipeline",
        "QueueError",
        "QueueClosed",
        "DataDirectoryLocked",
    }
)


def __getattr__(name: str) -> object:
    if name in _EMBEDDED:
        from respq import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module 'respq' has no attribute {name!r}")
