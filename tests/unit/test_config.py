"""Configuration: redis.conf parsing, command-line flags, CONFIG GET / SET / REWRITE, checked against redis-server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from respq import __version__
from respq.config import (
    DIRECTIVES,
    Config,
    ConfigError,
    ConfigSetError,
    Handling,
    config_get,
    config_rewrite,
    config_set,
    find_directive,
    load_config,
    memtoull,
    quote,
    split_args,
)

HEADER = f"*** FATAL CONFIG FILE ERROR (respq {__version__}) ***"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def fatal(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(argv)
    return caught.value.message


# -- line splitting and units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("port 6380", ["port", "6380"]),
        ("  save   900 1  ", ["save", "900", "1"]),
        ('requirepass "a b"', ["requirepass", "a b"]),
        ("requirepass 'it\\'s'", ["requirepass", "it's"]),
        ('logfile ""', ["logfile", ""]),
        ('x "\\x41\\n\\t\\\\\\""', ["x", 'A\n\t\\"']),
        ('x "\\xzz"', ["x", "xzz"]),  # not a hex escape: the backslash just escapes 'x'
        ('x "\\xff"', ["x", b"\xff".decode("utf-8", "surrogateescape")]),
        ("x a'b'", ["x", "ab"]),  # a quote may open in the middle of a token
        ('x "a"b', None),  # closing quote must be followed by a space
        ('x "open', None),
        ("x 'open", None),
        ("", []),
    ],
)
def test_split_args_like_sdssplitargs(line: str, expected: list[str] | None) -> None:
    assert split_args(line) == expected


def test_quote_round_trips_every_byte() -> None:
    value = bytes(range(256)).decode("utf-8", "surrogateescape")
    assert split_args("x " + quote(value)) == ["x", value]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0), ("1k", 1000), ("1kb", 1024), ("1K", 1000), ("2KB", 2048), ("1m", 10**6), ("1mb", 2**20),
        ("1g", 10**9), ("1gb", 2**30), ("5b", 5), ("", 0), ("-1", None), ("1x", None), ("1.5mb", None),
        (" 1", None), ("+1", None), ("99999999999999999999", 2**64 - 1),
    ],
)
def test_memory_units(text: str, expected: int | None) -> None:
    assert memtoull(text) == expected


# -- start-up ----------------------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = load_config([])
    assert config.port == 6379
    assert config.bind == ["127.0.0.1"]
    assert config.dir == os.path.abspath("respq-data")
    assert config.appendfsync == "always"
    assert config.requirepass == ""
    assert config.protected_mode is True
    assert (config.maxclients, config.timeout, config.databases) == (10000, 0, 16)
    assert config.proto_max_bulk_len == 512 * 2**20
    assert config.client_query_buffer_limit == 2**30
    assert config.client_output_buffer_limit == {
        "normal": (0, 0, 0), "replica": (256 * 2**20, 64 * 2**20, 60), "pubsub": (32 * 2**20, 8 * 2**20, 60),
    }
    assert (config.loglevel, config.logfile) == ("notice", "")
    assert (config.segment_size, config.max_open_files) == (4 * 2**20, 256)
    assert (config.checkpoint_bytes, config.maxdisk) == (64 * 2**20, 0)
    assert (config.enable_debug_command, config.enable_protected_configs) == ("no", "no")
    assert config.warnings == []
    assert config.config_file is None


def test_file_then_flags(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "respq.conf",
        "# comment\n\n  PORT 7000\nbind 127.0.0.1 ::1\nappendfsync everysec\r\nrequirepass \"s3 cret\"\n"
        "maxclients 50\nclient-output-buffer-limit pubsub 1mb 2kb 3\nsegment-size 1mb\nmaxdisk 10gb\n"
        "save 100 1\nsave 200 2\n",
    )
    config = load_config([conf, "--port", "7001", "--loglevel", "WARNING", "--timeout 30"])
    assert config.config_file == conf
    assert config.port == 7001  # flags come after the file and win
    assert config.bind == ["127.0.0.1", "::1"]
    assert config.appendfsync == "everysec"
    assert config.requirepass == "s3 cret"
    assert config.maxclients == 50
    assert config.timeout == 30
    assert config.loglevel == "warning"
    assert config.client_output_buffer_limit["pubsub"] == (2**20, 2048, 3)
    assert config.client_output_buffer_limit["normal"] == (0, 0, 0)
    assert config.segment_size == 2**20
    assert config.maxdisk == 10 * 2**30
    assert config.show("save") == "100 1 200 2"  # the first save line replaces the default schedule


def test_multi_value_flags_and_bare_save() -> None:
    assert load_config(["--save", "60 5 30 10"]).show("save") == "60 5 30 10"
    assert load_config(["--save", "--port", "7002"]).show("save") == ""
    assert load_config(["--port", "7002", "--save"]).show("save") == ""
    assert load_config(["--bind", "127.0.0.1 ::1"]).bind == ["127.0.0.1", "::1"]
    assert load_config(["--bind", "127.0.0.1", "::1"]).bind == ["127.0.0.1", "::1"]
    assert load_config(["--client-output-buffer-limit", "normal 1mb 1mb 10"]).client_output_buffer_limit[
        "normal"
    ] == (2**20, 2**20, 10)


def test_unknown_directive_names_its_line(tmp_path: Path) -> None:
    conf = write(tmp_path / "a.conf", "port 1234\nfoo bar\n")
    assert fatal([conf]) == (
        f"{HEADER}\nReading the configuration file, at line 2\n>>> 'foo bar'\n"
        "Bad directive or wrong number of arguments"
    )


def test_flag_errors_count_lines_after_the_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "a.conf", "port 1234\n")
    assert fatal([conf, "--port", "5", "--bogus", "1", "2"]) == (
        f"{HEADER}\nReading the configuration file, at line 4\n>>> 'bogus \"1\" \"2\"'\n"
        "Bad directive or wrong number of arguments"
    )
    message = fatal(["--port", "abc"])
    assert message.endswith("at line 2\n>>> 'port \"abc\"'\nargument couldn't be parsed into an integer")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port", "wrong number of arguments"),
        ("port 1 2", "wrong number of arguments"),
        ("port 70000", "argument must be between 0 and 65535 inclusive"),
        ("maxclients 0", "argument must be between 1 and 4294967295 inclusive"),
        ("timeout 1.5", "argument couldn't be parsed into an integer"),
        ("proto-max-bulk-len 1k", "argument must be between 1048576 and 9223372036854775807 inclusive"),
        ("maxmemory 1x", "argument must be a memory value"),
        ("protected-mode maybe", "argument must be 'yes' or 'no'"),
        ("appendfsync sometimes", "argument(s) must be one of the following: everysec, always, no"),
        ("save 1 2 3", "Invalid save parameters"),
        ("client-output-buffer-limit master 1 2 3", "Invalid client class specified in buffer limit configuration."),
        ('port "12"34', "Unbalanced quotes in configuration line"),
        ("foo.bar 1", "respq does not load Redis modules"),
        ("loadmodule /x.so", "respq does not load Redis modules"),
    ],
)
def test_bad_values_fail_start_up(tmp_path: Path, line: str, message: str) -> None:
    conf = write(tmp_path / "a.conf", line + "\n")
    assert fatal([conf]) == f"{HEADER}\nReading the configuration file, at line 1\n>>> '{line}'\n{message}"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("daemonize yes", "respq does not daemonize"),
        ("unixsocket /tmp/r.sock", "Unix socket"),
        ("tls-ciphersuites TLS_AES_128_GCM_SHA256", "Python's ssl module cannot set it"),
        ("tls-session-cache-size 100", "Python's ssl module cannot set it"),
        ("tls-session-cache-timeout 60", "Python's ssl module cannot set it"),
        ("notify-keyspace-events KEA", "keyspace notifications"),
        ("supervised systemd", "systemd"),
    ],
)
def test_behaviour_changing_values_are_refused(tmp_path: Path, line: str, reason: str) -> None:
    conf = write(tmp_path / "a.conf", line + "\n")
    message = fatal([conf])
    assert f">>> '{line}'" in message
    assert "is not supported" in message and reason in message


def test_harmless_values_of_restricted_directives_pass(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "a.conf",
        'daemonize no\ncluster-enabled no\nreplicaof no one\nunixsocket ""\ntls-port 0\nsupervised auto\n'
        'notify-keyspace-events ""\ntls-session-cache-size 20480\ntls-session-cache-timeout 300\n',
    )
    assert load_config([conf]).warnings == []


def test_ignored_directives_warn_only_when_changed(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "a.conf",
        "appendonly no\nhz 10\nmaxmemory 1gb\nmaxmemory-policy allkeys-lru\nsave \"\"\n"
        "list-max-ziplist-size -2\nlist-max-ziplist-entries 512\nmaxmemory 2gb\n",
    )
    config = load_config([conf])
    assert [warning.split("'")[1] for warning in config.warnings] == ["maxmemory-policy", "save"]  # maxmemory: honoured
    assert config_get(config, [b"maxmemory"]) == {b"maxmemory": b"2147483648"}


def test_stock_redis_conf_loads(tmp_path: Path) -> None:
    """Every directive of the redis.conf Redis 7.0 ships is understood."""
    stock = Path("/etc/redis/redis.conf")
    if not stock.exists():
        pytest.skip("no redis.conf installed")
    text = stock.read_text().replace("daemonize yes", "daemonize no")
    text = text.replace("logfile /var/log/redis/redis-server.log", f"logfile {tmp_path / 'log'}")
    config = load_config([write(tmp_path / "redis.conf", text)])
    assert config.port == 6379


def test_include_and_rename_command(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d" / "10-port.conf", "port 7100\n")
    write(tmp_path / "conf.d" / "20-timeout.conf", "timeout 9\n")
    conf = write(
        tmp_path / "main.conf",
        f"include {tmp_path / 'conf.d' / '*.conf'}\ninclude {tmp_path / 'none' / '*.conf'}\n"
        "rename-command FLUSHALL \"\"\nrename-command CONFIG cfg\n",
    )
    config = load_config([conf])
    assert (config.port, config.timeout) == (7100, 9)
    assert config.rename_commands == [("FLUSHALL", ""), ("CONFIG", "cfg")]
    missing = fatal([write(tmp_path / "bad.conf", f"include {tmp_path / 'absent.conf'}\n")])
    assert missing == f"Fatal error, can't open config file '{tmp_path / 'absent.conf'}': No such file or directory"


def test_unopenable_logfile_fails_start_up(tmp_path: Path) -> None:
    assert fatal(["--logfile", str(tmp_path / "no" / "such" / "log")]) == (
        f"{HEADER}\nCan't open the log file: No such file or directory"
    )


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.conf"
    assert fatal([str(path)]) == f"Fatal error, can't open config file '{path}': No such file or directory"


# -- CONFIG GET --------------------------------------------------------------------------------------------------


def test_config_get_formats_like_redis() -> None:
    config = load_config(["--maxmemory-clients", "10%", "--unixsocketperm", "700", "--maxmemory", "1k"])
    assert config_get(config, [b"save", b"appendonly", b"client-output-buffer-limit"]) == {
        b"save": b"3600 1 300 100 60 10000",
        b"appendonly": b"no",
        b"client-output-buffer-limit": b"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    }
    assert config_get(config, [b"maxmemory*"]) == {
        b"maxmemory": b"1000", b"maxmemory-policy": b"noeviction", b"maxmemory-samples": b"5",
        b"maxmemory-eviction-tenacity": b"10", b"maxmemory-clients": b"10%",
    }
    assert config_get(config, [b"unixsocketperm", b"latency-tracking-info-percentiles"]) == {
        b"unixsocketperm": b"700", b"latency-tracking-info-percentiles": b"50 99 99.9",
    }


def test_client_memory_limits_in_bytes() -> None:
    assert load_config([]).client_output_queue_limit == 2**30
    assert load_config(["--client-output-queue-limit", "2mb"]).client_output_queue_limit == 2**21
    assert load_config([]).maxmemory_clients == 0
    assert load_config(["--maxmemory-clients", "10mb"]).maxmemory_clients == 10 * 2**20
    # As Redis: a percentage of maxmemory (none without maxmemory), never under 128 KiB.
    assert load_config(["--maxmemory-clients", "10%"]).maxmemory_clients == 0
    assert load_config(["--maxmemory-clients", "10%", "--maxmemory", "1gb"]).maxmemory_clients == 2**30 // 10
    assert load_config(["--maxmemory-clients", "1%", "--maxmemory", "1mb"]).maxmemory_clients == 128 * 1024
    assert load_config(["--maxmemory-clients", "1kb"]).maxmemory_clients == 128 * 1024


def test_config_get_names_aliases_and_hidden() -> None:
    config = Config()
    assert config_get(config, [b"MAXCLIENTS"]) == {b"MAXCLIENTS": b"10000"}  # exact names keep their spelling
    assert config_get(config, [b"maxclients", b"MAXCLIENTS"]) == {b"maxclients": b"10000"}
    assert config_get(config, [b"slaveof"]) == {b"slaveof": b""}
    assert config_get(config, [b"*-time-limit"]) == {b"lua-time-limit": b"5000"}
    both = config_get(config, [b"*slave-priority*", b"replica-pr?ority"])
    assert set(both) == {b"slave-priority", b"replica-priority"}
    assert config_get(config, [b"nosuch"]) == {}
    assert config_get(config, [b"*["]) == {}
    assert config_get(config, [b"watchdog-period"]) == {b"watchdog-period": b"0"}
    assert b"watchdog-period" not in config_get(config, [b"*"])
    assert config_get(config, [b"PORT", b"po*"]) == {b"PORT": b"6379"}  # a name already answered is not repeated


def test_config_get_covers_every_directive() -> None:
    everything = config_get(Config(), [b"*"])
    visible = {d.name for d in DIRECTIVES if not d.hidden} | {d.alias for d in DIRECTIVES if d.alias}
    assert {name.decode() for name in everything} == visible


# -- CONFIG SET --------------------------------------------------------------------------------------------------


def set_error(config: Config, *pairs: tuple[bytes, bytes]) -> bytes:
    with pytest.raises(ConfigSetError) as caught:
        config_set(config, list(pairs))
    return caught.value.message


def test_config_set_runtime_changes_are_reported() -> None:
    config = Config()
    changed = config_set(
        config,
        [(b"appendfsync", b"everysec"), (b"requirepass", b"pw"), (b"maxclients", b"5"), (b"timeout", b"7"),
         (b"loglevel", b"debug"), (b"client-output-buffer-limit", b"pubsub 1mb 1mb 0"),
         (b"proto-max-bulk-len", b"2mb"), (b"client-query-buffer-limit", b"2mb"), (b"maxdisk", b"1gb"),
         (b"protected-mode", b"no"), (b"hz", b"10")],
    )
    assert changed == [
        "appendfsync", "requirepass", "maxclients", "timeout", "loglevel", "client-output-buffer-limit",
        "proto-max-bulk-len", "client-query-buffer-limit", "maxdisk", "protected-mode",
    ]
    assert (config.appendfsync, config.requirepass, config.maxclients, config.timeout) == ("everysec", "pw", 5, 7)
    assert config.client_output_buffer_limit["pubsub"] == (2**20, 2**20, 0)
    assert config.client_output_buffer_limit["replica"] == (256 * 2**20, 64 * 2**20, 60)
    assert (config.proto_max_bulk_len, config.client_query_buffer_limit, config.maxdisk) == (2**21, 2**21, 2**30)
    assert config_set(config, [(b"requirepass", b"")]) == ["requirepass"]
    assert config.requirepass == ""


def test_config_set_is_all_or_nothing() -> None:
    config = Config()
    error = set_error(config, (b"timeout", b"5"), (b"maxclients", b"x"))
    assert error == (
        b"ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
        b"argument couldn't be parsed into an integer"
    )
    assert config.timeout == 0


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ([(b"foo", b"bar")], b"ERR Unknown option or number of arguments for CONFIG SET - 'foo'"),
        ([(b"port", b"7000")],
         b"ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
        ([(b"DATABASES", b"4")],
         b"ERR CONFIG SET failed (possibly related to argument 'DATABASES') - can't set immutable config"),
        ([(b"dir", b"/tmp")],
         b"ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
        ([(b"maxclients", b"1"), (b"MAXCLIENTS", b"2")],
         b"ERR CONFIG SET failed (possibly related to argument 'MAXCLIENTS') - duplicate parameter"),
        ([(b"timeout", b"1"), (b"nope", b"1")], b"ERR Unknown option or number of arguments for CONFIG SET - 'nope'"),
        ([(b"port", b"1"), (b"nope", b"1")],
         b"ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
        ([(b"SLAVE-PRIORITY", b"x")],
         b"ERR CONFIG SET failed (possibly related to argument 'slave-priority') - "
         b"argument couldn't be parsed into an integer"),
        ([(b"save", b" 1 1")],
         b"ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
        ([(b"maxmemory-clients", b"101%")],
         b"ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - "
         b"percentage argument must be less or equal to 100"),
        ([(b"bad\r\nname", b"1")], b"ERR Unknown option or number of arguments for CONFIG SET - 'bad  name'"),
    ],
)
def test_config_set_errors(pairs: list[tuple[bytes, bytes]], error: bytes) -> None:
    assert set_error(Config(), *pairs) == error


def test_config_set_refuses_unsupported_behaviour() -> None:
    error = set_error(Config(), (b"notify-keyspace-events", b"KEA"))
    assert error.startswith(b"ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - ")
    assert b"keyspace notifications" in error
    assert config_set(Config(), [(b"notify-keyspace-events", b"")]) == []


def test_config_set_ignored_directives_are_remembered() -> None:
    config = Config()
    assert config_set(config, [(b"save", b""), (b"appendonly", b"yes"), (b"hz", b"1000")]) == [
        "save", "appendonly", "hz",
    ]
    assert config_get(config, [b"save", b"appendonly", b"hz"]) == {
        b"save": b"", b"appendonly": b"yes", b"hz": b"500",
    }
    config_set(config, [(b"slave-priority", b"5"), (b"replica-priority", b"6")])  # an alias is a separate name
    assert config_get(config, [b"replica-priority"]) == {b"replica-priority": b"6"}


def test_protected_configs_follow_enable_protected_configs() -> None:
    config = load_config(["--enable-protected-configs", "local"])
    assert b"protected" in set_error(config, (b"dbfilename", b"x.rdb"))
    config_set(config, [(b"dbfilename", b"x.rdb")], client_is_local=True)
    assert config_get(config, [b"dbfilename"]) == {b"dbfilename": b"x.rdb"}
    # dir is protected in Redis and cannot move under a running respq at all.
    with pytest.raises(ConfigSetError) as caught:
        config_set(config, [(b"dir", b"/tmp")], client_is_local=True)
    assert caught.value.message.endswith(b"can't set immutable config")
    assert config.warnings == []


# -- CONFIG REWRITE ----------------------------------------------------------------------------------------------


def test_rewrite_without_a_file() -> None:
    with pytest.raises(ConfigSetError) as caught:
        config_rewrite(Config(), [])
    assert caught.value.message == b"ERR The server is running without a config file"


def test_rewrite_keeps_the_file_shape(tmp_path: Path) -> None:
    path = tmp_path / "respq.conf"
    write(
        path,
        "# respq settings\nport 7000\n\n\n# persistence\nsave 100 1\nsave 200 2\nslaveof no one\n"
        "list-max-ziplist-entries 512\nrename-command FLUSHALL \"\"\ntimeout 5\ntimeout 6\n",
    )
    config = load_config([str(path)])
    config_set(config, [(b"timeout", b"0"), (b"maxclients", b"77"), (b"requirepass", b"p w"), (b"save", b"300 3")])
    config_rewrite(config, [])
    assert path.read_text() == (
        "# respq settings\nport 7000\n\n# persistence\nsave 300 3\n\n"
        "# ??? list-max-ziplist-entries 512\nrename-command FLUSHALL \"\"\ntimeout 0\n\n"
        f"# Generated by CONFIG REWRITE\ndir {quote(config.dir)}\nrequirepass \"p w\"\nmaxclients 77\n"
        "latency-tracking-info-percentiles 50 99 99.9\n"  # Redis always writes this one
    )
    reloaded = load_config([str(path)])
    assert (reloaded.timeout, reloaded.maxclients, reloaded.requirepass) == (0, 77, "p w")
    config_rewrite(reloaded, [])  # a second rewrite changes nothing
    assert load_config([str(path)]).values == reloaded.values
    assert oct(path.stat().st_mode & 0o777) == oct(0o644 & ~_current_umask())


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rewrite_writes_memory_in_units(tmp_path: Path) -> None:
    path = Path(write(tmp_path / "a.conf", ""))
    config = load_config([str(path)])
    config_set(config, [(b"maxdisk", b"3gb"), (b"client-output-buffer-limit", b"normal 1mb 1000 5")])
    config_rewrite(config, [])
    text = path.read_text()
    assert "maxdisk 3gb\n" in text
    assert "client-output-buffer-limit normal 1mb 1000 5\n" in text
    assert "client-output-buffer-limit pubsub" not in text  # unchanged classes stay out


def test_table_classification() -> None:
    supported = {d.name for d in DIRECTIVES if d.handling is Handling.SUPPORTED}
    assert {"port", "bind", "dir", "appendfsync", "requirepass", "protected-mode", "maxclients", "timeout",
            "databases", "proto-max-bulk-len", "client-query-buffer-limit", "client-output-buffer-limit",
            "loglevel", "logfile", "segment-size", "max-open-files", "checkpoint-bytes", "maxdisk"} <= supported
    assert find_directive("SLAVEOF") is find_directive("replicaof")
    assert find_directive("hash-max-ziplist-entries") is find_directive("hash-max-listpack-entries")


# -- against the real redis-server -------------------------------------------------------------------------------

# CONFIG SET cases where respq must answer exactly as Redis 7.0 does (errors and values).
SAME_AS_REDIS: list[tuple[bytes, bytes]] = [
    (b"foo", b"bar"), (b"maxclients", b"x"), (b"maxclients", b"-1"), (b"maxclients", b"0"), (b"maxclients", b"0100"),
    (b"maxclients", b"+100"), (b"maxclients", b" 100"), (b"timeout", b"1.5"), (b"timeout", b"2147483648"),
    (b"databases", b"4"), (b"dir", b"/tmp"), (b"dbfilename", b"x"), (b"unixsocketperm", b"777"),
    (b"maxmemory", b""), (b"maxmemory", b"1k"), (b"maxmemory", b"1x"), (b"maxmemory", b"99999999999999999999"),
    (b"maxmemory", b"-5"), (b"appendfsync", b"sometimes"), (b"protected-mode", b"maybe"), (b"hz", b"1000"),
    (b"hz", b"-1"), (b"loglevel", b"LOUD"), (b"loglevel", b"WARNING"), (b"client-output-buffer-limit", b"normal 1 2"),
    (b"client-output-buffer-limit", b"master 1 2 3"), (b"client-output-buffer-limit", b"normal 1 2 x"),
    (b"client-output-buffer-limit", b"pubsub 1mb 2k 3"), (b"client-output-buffer-limit", b"slave 1gb 1 -1"),
    (b"save", b"1 2 x"), (b"save", b"10 20 30 40"), (b"save", b"100"), (b"save", b"0 1"), (b"save", b"1 -1"),
    (b"save", b" 1 1"), (b"save", b""), (b"maxmemory-clients", b"10%"), (b"maxmemory-clients", b"101%"),
    (b"maxmemory-clients", b"-5"), (b"maxmemory-clients", b"0%"), (b"slowlog-log-slower-than", b"-2"),
    (b"proto-max-bulk-len", b"10"), (b"proto-max-bulk-len", b"2mb"), (b"client-query-buffer-limit", b"1"),
    (b"latency-tracking-info-percentiles", b"50 abc"), (b"latency-tracking-info-percentiles", b"50.5 99.90 1e1"),
    (b"latency-tracking-info-percentiles", b"101"), (b"shutdown-on-sigint", b"save now"),
    (b"shutdown-on-sigint", b"save nosave"), (b"shutdown-on-sigterm", b""), (b"oom-score-adj-values", b"1 2"),
    (b"oom-score-adj-values", b"1 2 3000"), (b"oom-score-adj", b"relative"), (b"notify-keyspace-events", b"Q"),
    (b"maxmemory-policy", b"allkeys-LRU"), (b"list-max-listpack-size", b"-5"), (b"replicaof", b"no one"),
    (b"SLAVEOF", b"no one"), (b"cluster-announce-hostname", b"a_b"), (b"appenddirname", b"x"),
    (b"io-threads", b"2"), (b"SLAVE-PRIORITY", b"x"), (b"repl-diskless-load", b"bad"),
    (b"tracking-table-max-keys", b"-1"), (b"activedefrag", b"yes"), (b"proc-title-template", b"{foo}"),
    (b"proc-title-template", b"{title}"), (b"enable-protected-configs", b"yes"), (b"lfu-log-factor", b"2147483648"),
    (b"active-defrag-max-scan-fields", b"-1"), (b"hash-max-ziplist-entries", b"-1"), (b"requirepass", b"secret"),
    (b"requirepass", b""), (b"masterauth", b"x"), (b"bind-source-addr", b""), (b"tcp-keepalive", b"60"),
    (b"stream-node-max-bytes", b"1kb"), (b"syslog-facility", b"local3"), (b"acl-pubsub-default", b"allchannels"),
]


@pytest.fixture
def redis_client() -> Iterator[object]:
    from conftest import start_redis  # the shared fixtures module at the repository root

    redis = pytest.importorskip("redis")
    server = start_redis()
    client = redis.Redis(port=server.port)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def test_config_set_and_get_agree_with_redis(redis_client) -> None:  # type: ignore[no-untyped-def]
    import redis

    config = Config()
    for name, value in SAME_AS_REDIS:
        try:
            redis_client.execute_command("CONFIG", "SET", name, value)
            expected = None
        except redis.ResponseError as error:
            expected = str(error).encode()
        try:
            config_set(config, [(name, value)])
            got = None
        except ConfigSetError as error:
            got = error.message.removeprefix(b"ERR ")  # redis-py strips the ERR code
        assert got == expected, (name, value)
        if expected is None:
            want = redis_client.execute_command("CONFIG", "GET", name)
            assert config_get(config, [name]) == want, name


def test_config_get_patterns_agree_with_redis(redis_client) -> None:  # type: ignore[no-untyped-def]
    redis_client.execute_command("CONFIG", "SET", "save", "3600 1 300 100 60 10000")
    for patterns in ([b"*max*"], [b"slave*"], [b"*-[a-c]*"], [b"?ort", b"BIND"], [b"*lua*", b"*ziplist*"],
                     [b"[^a-m]*y"], [b"save", b"appendonly"]):
        want = redis_client.execute_command("CONFIG", "GET", *patterns)  # redis-py answers with a dict
        for name in (b"port", b"bind", b"dir", b"appendfsync", b"logfile"):  # respq's own defaults differ here
            want.pop(name, None)
            want.pop(name.upper(), None)
        got = config_get(Config(), patterns)
        assert {name: got[name] for name in want} == want, patterns
        assert set(got) - set(want) <= {b"port", b"bind", b"BIND", b"dir", b"appendfsync", b"logfile",
                                        b"segment-size", b"max-open-files", b"checkpoint-bytes", b"maxdisk",
                                        b"scrub-bandwidth", b"http-port", b"http-bind", b"metrics-per-queue",
                                        b"metrics-top-queues"}


# Config lines redis-server rejects with the same message respq gives.
BAD_LINES = [
    "foo bar", "port abc", "port", "maxclients 1 2", 'port "\\"1"', "loglevel loud", 'port "12"34',
    "save 1 2 3", "client-output-buffer-limit normal 1", "maxmemory 12x", "protected-mode perhaps",
    "latency-tracking-info-percentiles 200", "oom-score-adj-values 1", "bind " + " ".join(["127.0.0.1"] * 17),
    "replicaof host port", "notify-keyspace-events Q", "dbfilename a/b", "appendfilename \"\"", "foo.bar",
    "sentinel monitor x 127.0.0.1 6379 2", "shutdown-on-sigterm save nosave",
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_start_up_errors_agree_with_redis(tmp_path: Path, line: str) -> None:
    from conftest import require_tool

    redis_server = require_tool("redis-server")
    conf = write(tmp_path / "bad.conf", "# first line\n" + line + "\n")
    result = subprocess.run([redis_server, conf], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    redis_lines = result.stderr.strip().splitlines()
    ours = fatal([conf]).splitlines()
    assert ours[1:] == redis_lines[1:]
    assert redis_lines[0].replace("Redis 7.0.15", f"respq {__version__}") == ours[0]
