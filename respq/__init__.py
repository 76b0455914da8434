"""respq: a Redis-protocol queue server keeping every list and stream in a segmented log on disk."""

__version__ = "0.1.0"
# The Redis version we answer as: clients (RQ, Sidekiq, redis-py) gate features on it.
REDIS_COMPAT_VERSION = "7.0.15"
