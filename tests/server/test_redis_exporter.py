"""oliver006/redis_exporter (Debian's prometheus-redis-exporter) run against respq exports the same metric names as
against redis-server, but for INFO fields respq does not have (the list below, documented in docs/metrics.md)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, require_tool, start_redis, start_respq

# INFO fields Redis 7.0 has and respq does not: allocator and defragmentation figures, fork and copy-on-write
# statistics of RDB/AOF rewrites, I/O threads, client tracking, replica resyncs, lazy free. Keep in step with the
# table in docs/metrics.md.
MISSING_ON_RESPQ = {
    "redis_active_defrag_running",
    "redis_allocator_active_bytes",
    "redis_allocator_allocated_bytes",
    "redis_allocator_frag_bytes",
    "redis_allocator_frag_ratio",
    "redis_allocator_resident_bytes",
    "redis_allocator_rss_bytes",
    "redis_allocator_rss_ratio",
    "redis_aof_current_rewrite_duration_sec",
    "redis_aof_last_bgrewrite_status",
    "redis_aof_last_cow_size_bytes",
    "redis_aof_last_rewrite_duration_sec",
    "redis_cpu_sys_main_thread_seconds_total",
    "redis_cpu_user_main_thread_seconds_total",
    "redis_defrag_hits",
    "redis_defrag_key_hits",
    "redis_defrag_key_misses",
    "redis_defrag_misses",
    "redis_dump_payload_sanitizations_total",
    "redis_expired_stale_percentage",
    "redis_expired_time_cap_reached_total",
    "redis_io_threaded_reads_processed_total",
    "redis_io_threaded_writes_processed_total",
    "redis_latest_fork_seconds",
    "redis_lazyfree_pending_objects",
    "redis_mem_clients_normal",
    "redis_mem_clients_slaves",
    "redis_mem_fragmentation_bytes",
    "redis_mem_fragmentation_ratio",
    "redis_mem_not_counted_for_eviction_bytes",
    "redis_memory_used_dataset_bytes",
    "redis_memory_used_overhead_bytes",
    "redis_memory_used_startup_bytes",
    "redis_migrate_cached_sockets_total",
    "redis_module_fork_in_progress",
    "redis_module_fork_last_cow_size",
    "redis_rdb_current_bgsave_duration_sec",
    "redis_rdb_last_bgsave_duration_sec",
    "redis_rdb_last_cow_size_bytes",
    "redis_replica_partial_resync_accepted",
    "redis_replica_partial_resync_denied",
    "redis_replica_resyncs_full",
    "redis_slave_expires_tracked_keys",
    "redis_total_reads_processed_total",
    "redis_total_writes_processed_total",
    "redis_tracking_total_items",
    "redis_tracking_total_keys",
    "redis_tracking_total_prefixes",
    "redis_unexpected_error_replies_total",
}
# What an operator of queues looks for: the server is up, a list's length, a stream's groups and their pending
# entries (Debian 12's redis_exporter 1.45 has no group lag nor first entry id yet).
QUEUE_METRICS = {
    "redis_up",
    "redis_key_size",
    "redis_stream_length",
    "redis_stream_groups",
    "redis_stream_group_messages_pending",
    "redis_stream_group_consumers",
    "redis_stream_group_consumer_messages_pending",
}
START_TIMEOUT = 30.0


def fill(port: int) -> None:
    client = redis.Redis(port=port, socket_timeout=10)
    client.rpush("tasks", "a", "b", "c")
    client.xadd("jobs", {"f": "v"})
    client.xadd("jobs", {"f": "w"})
    client.xgroup_create("jobs", "workers", id="0")
    client.xreadgroup("workers", "w1", {"jobs": ">"}, count=1)
    client.close()


@contextmanager
def exporter(binary: str, port: int) -> Iterator[str]:
    """redis_exporter scraping the server on ``port``; yields its /metrics URL."""
    listen = free_port()
    process = subprocess.Popen(
        [
            binary,
            "-redis.addr",
            f"redis://127.0.0.1:{port}",
            "-web.listen-address",
            f"127.0.0.1:{listen}",
            "-check-keys",
            "tasks",
            "-check-streams",
            "jobs",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{listen}/metrics"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "redis_exporter did not listen"
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.communicate(timeout=10)


def metric_names(url: str) -> set[str]:
    """The sample names as prometheus-client's parser reads them (a counter the exporter names without ``_total``
    gets it, as a Prometheus server would store it)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_redis_exporter_exports_the_same_names_from_respq_as_from_redis(tmp_path: Path) -> None:
    binary = require_tool("prometheus-redis-exporter")
    respq = start_respq(tmp_path / "data")
    reference = start_redis()
    try:
        names = {}
        for label, server in (("respq", respq), ("redis", reference)):
            fill(server.port)
            with exporter(binary, server.port) as url:
                names[label] = metric_names(url)
        assert names["respq"] >= QUEUE_METRICS
        assert names["respq"] - names["redis"] == set()
        assert names["redis"] - names["respq"] == MISSING_ON_RESPQ
    finally:
        respq.stop()
        reference.stop()
