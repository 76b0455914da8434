"""INFO's sections and fields, rendered from the server's state.

This module imports no command module, so every front end renders the same text: the INFO command, and later an HTTP
metrics endpoint or a script. ``InfoSource`` names everything it reads; the server provides it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from respq import REDIS_COMPAT_VERSION, __version__, speedups
from respq.blocking import BlockingRegistry
from respq.client import Client
from respq.cluster import SlotMap
from respq.config import Config
from respq.keyspace import Keyspace
from respq.observe import histogram_percentile
from respq.pubsub import PubSub
from respq.replication import Replication
from respq.stats import Stats
from respq.storage.engine import Engine
from respq.storage.scrub import Scrub

if TYPE_CHECKING:
    from respq.scripting.engine import ScriptEngine
    from respq.scripting.functions import FunctionEngine


class InfoSource(Protocol):
    """The state INFO reports on (``respq.server.Server`` provides it)."""

    config: Config
    stats: Stats
    pubsub: PubSub
    blocking: BlockingRegistry
    clients: Mapping[int, Client]
    engine: Engine | None  # None while loading
    keyspace: Keyspace | None  # None while loading
    scrub: Scrub | None
    scripts: ScriptEngine
    functions: FunctionEngine
    loading: bool
    run_id: str
    port: int
    started: float  # time.time() at start
    started_monotonic: float
    last_checkpoint: float  # LASTSAVE's time
    saves: int  # SAVE, BGSAVE and BGREWRITEAOF done
    cluster: SlotMap | None  # the slot map with cluster-enabled yes
    replication: Replication


DEFAULT_SECTIONS = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
)
ALL_SECTIONS = (*DEFAULT_SECTIONS[:-3], "commandstats", "errorstats", "latencystats", "cluster", "keyspace")


def selected_sections(requested: list[str]) -> list[str]:
    """The sections INFO's lowercased arguments name, in order and once each: ``all`` and ``everything`` name every
    section, ``default`` (also what no argument means) the default ones; unknown names are kept and render nothing."""
    sections: list[str] = []
    for name in requested or ["default"]:
        if name in ("all", "everything"):
            sections += ALL_SECTIONS
        elif name == "default":
            sections += DEFAULT_SECTIONS
        else:
            sections.append(name)
    return list(dict.fromkeys(sections))


def render_info(server: InfoSource, sections: list[str]) -> str:
    """INFO's text for ``sections`` (see ``selected_sections``), each under its ``# Title`` line."""
    parts = []
    for name in sections:
        renderer = _SECTIONS.get(name)
        if renderer is None:
            continue
        title = "Keyspace" if name == "keyspace" else name.capitalize()
        title = {
            "cpu": "CPU",
            "commandstats": "Commandstats",
            "errorstats": "Errorstats",
            "latencystats": "Latencystats",
        }.get(name, title)
        lines = renderer(server)
        parts.append("# " + title + "\r\n" + "".join(f"{key}:{value}\r\n" for key, value in lines))
    return "\r\n".join(parts)


def _server_section(server: InfoSource) -> list[tuple[str, object]]:
    now = time.time()
    uptime = int(time.monotonic() - server.started_monotonic)
    uname = platform.uname()
    return [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", "0"),
        ("redis_mode", "standalone" if server.cluster is None else "cluster"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64),
        ("monotonic_clock", "POSIX clock_gettime"),
        ("multiplexing_api", "epoll"),
        ("atomicvar_api", "c11-builtin"),
        ("gcc_version", "0.0.0"),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", server.run_id),
        ("tcp_port", server.port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", 10),
        ("configured_hz", 10),
        ("lru_clock", int(now) & ((1 << 24) - 1)),
        ("executable", os.path.abspath(sys.argv[0])),
        ("config_file", server.config.config_file or ""),
        ("io_threads_active", 0),
        ("respq_version", __version__),
        ("respq_request_parser", speedups.REQUEST_PARSER),
    ]


def _clients_section(server: InfoSource) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(server.clients)),
        ("cluster_connections", 0),
        ("maxclients", server.config.maxclients),
        ("client_recent_max_input_buffer", max(server.stats.peak_input)),
        ("client_recent_max_output_buffer", max(server.stats.peak_output)),
        ("blocked_clients", len(server.blocking)),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", len(server.blocking)),
    ]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_STARTUP_RSS = _rss_bytes()  # the process's memory once its modules are loaded: MEMORY STATS startup.allocated


def memory_figures() -> dict[str, int]:
    """The process's memory now (rss), at its peak, and at start-up, in bytes."""
    return {
        "rss": _rss_bytes(),
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "startup": _STARTUP_RSS,
    }


def purge_memory() -> None:
    """Returns the memory malloc holds free to the system (glibc's malloc_trim), where the C library has it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.2f}{unit}"
    return f"{size}B"


def _memory_section(server: InfoSource) -> list[tuple[str, object]]:
    rss = _rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return [
        ("used_memory", rss),
        ("used_memory_human", _human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human(peak)),
        ("total_system_memory", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
        *_scripts_memory(server),
        ("maxmemory", server.config.maxmemory),
        ("maxmemory_human", _human(server.config.maxmemory)),
        ("maxmemory_policy", server.config.show("maxmemory-policy")),
        ("respq_inline_bytes", server.engine.inline_bytes if server.engine is not None else 0),
        *(
            [("respq_held_bytes", server.engine.used_bytes())]  # what maxmemory is measured against in memory
            if server.config.in_memory and server.engine is not None
            else []
        ),
        ("mem_allocator", "libc"),
    ]


def _scripts_memory(server: InfoSource) -> list[tuple[str, object]]:
    """The Lua fields of Redis 7.0's memory section: EVAL's runtime and cache, FUNCTION's runtime and libraries."""
    scripts = server.scripts
    lua = scripts.memory()
    cached = scripts.scripts_memory
    functions = server.functions
    functions_lua = functions.memory()
    functions_memory = functions.code_memory()
    return [
        ("used_memory_lua", lua),
        ("used_memory_vm_eval", lua),
        ("used_memory_lua_human", _human(lua)),
        ("used_memory_scripts_eval", cached),
        ("number_of_cached_scripts", len(scripts.scripts)),
        ("number_of_functions", len(functions.functions)),
        ("number_of_libraries", len(functions.libraries)),
        ("used_memory_vm_functions", functions_lua),
        ("used_memory_vm_total", lua + functions_lua),
        ("used_memory_vm_total_human", _human(lua + functions_lua)),
        ("used_memory_functions", functions_memory),
        ("used_memory_scripts", cached + functions_memory),
        ("used_memory_scripts_human", _human(cached + functions_memory)),
    ]


def _memory_persistence(server: InfoSource) -> list[tuple[str, object]]:
    """``storage memory``: the fields of Redis 7.0 started with ``--save '' --appendonly no``. SAVE and BGSAVE
    count as saves that wrote nothing; changes since the last one are not counted (no snapshot could hold them)."""
    lines: list[tuple[str, object]] = [
        ("loading", int(server.loading)),
        ("async_loading", 0),
        ("current_cow_peak", 0),
        ("current_cow_size", 0),
        ("current_cow_size_age", 0),
        ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", 0),
        ("current_save_keys_total", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(server.last_checkpoint)),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_last_bgsave_time_sec", -1),
        ("rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", server.saves),
        ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", 0),
        ("rdb_last_load_keys_loaded", 0),
        ("aof_enabled", 0),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_rewrite_time_sec", -1),
        ("aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", "ok"),
        ("aof_rewrites", 0),
        ("aof_rewrites_consecutive_failures", 0),
        ("aof_last_write_status", "ok"),
        ("aof_last_cow_size", 0),
        ("module_fork_in_progress", 0),
        ("module_fork_last_cow_size", 0),
    ]
    if server.engine is not None:
        lines += [("respq_" + key, value) for key, value in server.engine.stats().items()]
    return lines


def _persistence_section(server: InfoSource) -> list[tuple[str, object]]:
    if server.config.in_memory:
        return _memory_persistence(server)
    lines: list[tuple[str, object]] = [
        ("loading", int(server.loading)),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", int(server.started)),
        ("rdb_last_bgsave_status", "ok"),
        ("aof_enabled", 1),
        ("aof_rewrite_in_progress", 0),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_write_status", "ok" if server.engine is None or not server.engine.write_error else "err"),
    ]
    if server.engine is not None:
        lines += [("respq_" + key, value) for key, value in server.engine.stats().items()]
        lines.append(("respq_syncs_per_sec", server.stats.syncs_rate.per_second()))
    scrub = server.scrub
    if scrub is not None:
        fault = scrub.last_fault
        lines += [
            ("respq_scrub_status", scrub.status),
            ("respq_scrub_bytes", scrub.bytes_verified),
            ("respq_scrub_errors", scrub.errors),
            ("respq_last_scrub_error", f"{fault.path}@{fault.offset}" if fault else ""),
        ]
    return lines


def _stats_section(server: InfoSource) -> list[tuple[str, object]]:
    stats = server.stats
    return [
        ("total_connections_received", stats.total_connections),
        ("total_commands_processed", stats.total_commands),
        ("instantaneous_ops_per_sec", stats.ops_rate.per_second()),
        ("total_net_input_bytes", stats.net_input_bytes),
        ("total_net_output_bytes", stats.net_output_bytes),
        ("rejected_connections", stats.rejected_connections),
        ("expired_keys", stats.expired_keys),
        ("evicted_keys", 0),
        ("evicted_clients", stats.evicted_clients),
        ("keyspace_hits", stats.keyspace_hits),
        ("keyspace_misses", stats.keyspace_misses),
        ("pubsub_channels", len(server.pubsub.plain.subscribers)),
        ("pubsub_patterns", len(server.pubsub.patterns)),
        ("pubsubshard_channels", len(server.pubsub.shard.subscribers)),
        ("total_error_replies", stats.total_error_replies),
    ]


def _replication_section(server: InfoSource) -> list[tuple[str, object]]:
    """Redis 7.0's fields, in its order (replicationInfo in server.c's genRedisInfoString)."""
    replication = server.replication
    values = server.config.values
    now = time.monotonic()
    lines: list[tuple[str, object]] = []
    master = replication.master
    if master is None:
        lines.append(("role", "master"))
    else:
        lines += [
            ("role", "slave"),
            ("master_host", master.host),
            ("master_port", master.port),
            ("master_link_status", "up" if master.link_up else "down"),
            ("master_last_io_seconds_ago", int(now - master.last_io) if master.link_up else -1),
            ("master_sync_in_progress", int(master.syncing and not master.link_up)),
            ("slave_read_repl_offset", master.applied),
            ("slave_repl_offset", master.applied),
        ]
        if not master.link_up:
            lines.append(("master_link_down_since_seconds", int(now - master.down_since)))
        lines += [
            ("slave_priority", values["replica-priority"]),
            ("slave_read_only", int(bool(values["replica-read-only"]))),
            ("replica_announced", int(bool(values["replica-announced"]))),
        ]
    lines.append(("connected_slaves", len(replication.replicas)))
    for index, replica in enumerate(replication.replicas.values()):
        lag = int(now - replica.ack_time)
        line = f"ip={replica.ip},port={replica.port},state=online,offset={replica.ack_offset},lag={lag}"
        lines.append((f"slave{index}", line))
    active = replication.backlog is not None
    lines += [
        ("master_failover_state", "no-failover"),
        ("master_replid", replication.replid),
        ("master_replid2", replication.replid2),
        ("master_repl_offset", replication.offset),
        ("second_repl_offset", replication.second_offset),
        ("repl_backlog_active", int(active)),
        ("repl_backlog_size", replication.backlog_size),
        ("repl_backlog_first_byte_offset", replication.backlog_first if active else 0),
        ("repl_backlog_histlen", replication.backlog_bytes if active else 0),
    ]
    return lines


def _cpu_section(server: InfoSource) -> list[tuple[str, object]]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{usage.ru_stime:.6f}"),
        ("used_cpu_user", f"{usage.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
    ]


def _commandstats_section(server: InfoSource) -> list[tuple[str, object]]:
    lines = []
    for name, stat in server.stats.commands.items():
        per_call = stat.usec / stat.calls if stat.calls else 0.0
        lines.append(
            (
                f"cmdstat_{name}",
                f"calls={stat.calls},usec={stat.usec},usec_per_call={per_call:.2f},"
                f"rejected_calls={stat.rejected_calls},failed_calls={stat.failed_calls}",
            )
        )
    return lines


def _latencystats_section(server: InfoSource) -> list[tuple[str, object]]:
    """Each called command's latency percentiles (latency-tracking-info-percentiles), in microseconds, from the
    histograms LATENCY HISTOGRAM reports."""
    if not server.stats.track_latency:
        return []
    percentiles = server.config.values["latency-tracking-info-percentiles"]
    labels = [(f"p{p:f}".rstrip("0").rstrip("."), p) for p in percentiles]
    return [
        (
            f"latency_percentiles_usec_{name}",
            ",".join(f"{label}={histogram_percentile(stat.histogram, p):.3f}" for label, p in labels),
        )
        for name, stat in server.stats.commands.items()
        if any(stat.histogram)
    ]


def _errorstats_section(server: InfoSource) -> list[tuple[str, object]]:
    return [(f"errorstat_{code.decode('latin-1')}", f"count={count}") for code, count in server.stats.errors.items()]


def _cluster_section(server: InfoSource) -> list[tuple[str, object]]:
    """Redis's one field; in cluster mode, while this node keeps keys of slots another node serves (left out of
    keyspace), their count: Redis never keeps such keys, so the section stays Redis's otherwise."""
    if server.cluster is None:
        return [("cluster_enabled", 0)]
    unserved = server.keyspace.unserved_keys() if server.keyspace is not None else 0
    return [("cluster_enabled", 1), *([("cluster_unserved_keys", unserved)] if unserved else [])]


def _keyspace_section(server: InfoSource) -> list[tuple[str, object]]:
    if server.keyspace is None:
        return []
    lines: list[tuple[str, object]] = []
    for db in range(server.config.databases):
        keys = server.keyspace.dbsize(db)
        if keys:
            expires = len(server.keyspace.volatile[db])
            lines.append((f"db{db}", f"keys={keys},expires={expires},avg_ttl=0"))
    return lines


_SECTIONS = {
    "server": _server_section,
    "clients": _clients_section,
    "memory": _memory_section,
    "persistence": _persistence_section,
    "stats": _stats_section,
    "replication": _replication_section,
    "cpu": _cpu_section,
    "modules": lambda server: [],
    "commandstats": _commandstats_section,
    "errorstats": _errorstats_section,
    "latencystats": _latencystats_section,
    "cluster": lambda server: _cluster_section(server),
    "keyspace": _keyspace_section,
}
