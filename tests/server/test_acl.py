"""ACL users through redis-py: each rule kind allows what it names and denies the rest; redis-py's own ACL
methods (acl_setuser with its keyword arguments, acl_getuser's parsing) work; revoked subscribers and deleted
users are disconnected; users survive a restart through ACL SAVE and CONFIG REWRITE."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import ServerProcess, start_respq, wait_until


def _user(server: ServerProcess, name: str, password: str = "pw") -> redis.Redis:
    return redis.Redis(port=server.port, protocol=2, username=name, password=password, socket_timeout=10)


@pytest.fixture
def admin(respq_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=respq_server.port, protocol=2, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()


def _denied(call: Callable[[], object]) -> str:
    with pytest.raises(redis.exceptions.NoPermissionError) as raised:
        call()
    return str(raised.value)


# (rules, an allowed call, a denied call, the NOPERM text of the denial), each call on a fresh client of the user.
MATRIX: list[tuple[list[str], Callable[[redis.Redis], object], Callable[[redis.Redis], object], str]] = [
    (["+rpush", "~*"], lambda c: c.rpush("q", "a"), lambda c: c.lpush("q", "a"), "run the 'lpush' command"),
    (["-@all", "+@list", "~*"], lambda c: c.lpop("q"), lambda c: c.get("q"), "run the 'get' command"),
    (["+@all", "-@list", "~*"], lambda c: c.get("q"), lambda c: c.lpop("q"), "run the 'lpop' command"),
    (["allcommands", "-get", "~*"], lambda c: c.set("k", "v"), lambda c: c.get("k"), "run the 'get' command"),
    (["+client|id", "~*"], lambda c: c.client_id(), lambda c: c.client_list(), "run the 'client|list' command"),
    (["+select|0", "~*"], lambda c: c.execute_command("SELECT", 0), lambda c: c.execute_command("SELECT", 1),
     "run the 'select' command"),
    (["nocommands", "+get", "~*"], lambda c: c.get("k"), lambda c: c.set("k", "v"), "run the 'set' command"),
    (["+@all", "~jobs:*"], lambda c: c.rpush("jobs:1", "a"), lambda c: c.rpush("other", "a"), "one of the keys"),
    (["+@all", "%R~r:*"], lambda c: c.get("r:1"), lambda c: c.set("r:1", "v"), "one of the keys"),
    (["+@all", "%W~w:*"], lambda c: c.set("w:1", "v"), lambda c: c.get("w:1"), "one of the keys"),
    (["+@all", "%W~w:*", "%R~r:*"], lambda c: c.copy("r:1", "w:1"), lambda c: c.copy("w:1", "r:1"),
     "one of the keys"),
    (["+@all", "allkeys", "resetkeys"], lambda c: c.ping(), lambda c: c.get("k"), "one of the keys"),
    (["+@all", "&news:*"], lambda c: c.publish("news:1", "m"), lambda c: c.publish("sports", "m"),
     "one of the channels"),
    (["+@all", "allchannels", "resetchannels"], lambda c: c.ping(), lambda c: c.publish("x", "m"),
     "one of the channels"),
    (["+@all", "~a:*", "(~b:* +get)"], lambda c: c.get("b:1"), lambda c: c.set("b:1", "v"), "one of the keys"),
    (["+@all", "~a:*", "(~b:* +get)", "clearselectors"], lambda c: c.get("a:1"), lambda c: c.get("b:1"),
     "one of the keys"),
]


@pytest.mark.parametrize("rules, allowed, denied, reason", MATRIX, ids=[" ".join(row[0]) for row in MATRIX])
def test_each_rule_kind_allows_and_denies(
    respq_server: ServerProcess,
    admin: redis.Redis,
    rules: list[str],
    allowed: Callable[[redis.Redis], object],
    denied: Callable[[redis.Redis], object],
    reason: str,
) -> None:
    admin.execute_command("ACL", "SETUSER", "u", "reset", "on", ">pw", *rules)
    user = _user(respq_server, "u")
    try:
        allowed(user)
        assert reason in _denied(lambda: denied(user))
    finally:
        user.close()
    assert admin.acl_log(count=1)[0]["username"] == "u"


def test_passwords_nopass_and_off(respq_server: ServerProcess, admin: redis.Redis) -> None:
    admin.execute_command("ACL", "SETUSER", "u", "on", ">one", ">two", "+@all", "~*")
    for password in ("one", "two"):
        assert _user(respq_server, "u", password).ping()
    admin.execute_command("ACL", "SETUSER", "u", "<one")
    with pytest.raises(redis.exceptions.AuthenticationError):
        _user(respq_server, "u", "one").ping()
    admin.execute_command("ACL", "SETUSER", "u", "nopass")
    assert _user(respq_server, "u", "anything").ping()
    admin.execute_command("ACL", "SETUSER", "u", "off")
    with pytest.raises(redis.exceptions.AuthenticationError):
        _user(respq_server, "u", "anything").ping()
    # Failures of one user within a minute share an entry, as in Redis (redis-py retries a failed handshake).
    (entry,) = admin.acl_log()
    assert (entry["reason"], entry["username"]) == ("auth", "u") and entry["count"] >= 2


def test_redis_py_acl_methods(respq_server: ServerProcess, admin: redis.Redis) -> None:
    assert admin.acl_setuser(
        "svc",
        enabled=True,
        passwords=["+secret", "+other"],
        hashed_passwords=["+" + "a" * 64],
        categories=["+@list", "-@dangerous"],
        commands=["+get", "-lpush"],
        keys=["jobs:*"],
        channels=["jobs:*"],
        selectors=[("+set", "~cache:*")],
    )
    info = admin.acl_getuser("svc")
    assert info["enabled"] is True
    assert "on" in info["flags"]
    assert len(info["passwords"]) == 3
    assert info["keys"] == ["~jobs:*"] or info["keys"] == "~jobs:*"
    assert "+get" in info["commands"] and "-lpush" in info["commands"]
    assert len(info["selectors"]) == 1 and "~cache:*" in info["selectors"][0]
    assert admin.acl_setuser("svc", reset=True, enabled=False)
    assert admin.acl_getuser("svc")["enabled"] is False
    assert admin.acl_setuser("svc", nopass=True, enabled=True, reset_keys=True, reset_channels=True,
                             commands=["+ping"])
    assert "svc" in admin.acl_users()
    assert any(line.startswith("user svc on nopass") for line in admin.acl_list())
    assert admin.acl_whoami() == "default"
    assert "list" in admin.acl_cat()
    assert "lpush" in admin.acl_cat("list")
    assert len(admin.acl_genpass()) == 64
    assert admin.acl_dryrun("svc", "ping") == b"OK"
    assert b"no permissions" in admin.acl_dryrun("svc", "get", "x")
    assert admin.acl_getuser("nosuch") is None
    assert admin.acl_deluser("svc") == 1
    assert admin.acl_log_reset()


def test_a_revoked_subscriber_and_a_deleted_user_are_disconnected(
    respq_server: ServerProcess, admin: redis.Redis
) -> None:
    admin.execute_command("ACL", "SETUSER", "sub", "on", ">pw", "&news:*", "&alerts", "+@all")
    subscriber = _user(respq_server, "sub").pubsub()
    subscriber.subscribe("alerts")
    wait_until(lambda: admin.pubsub_numsub("alerts")[0][1] == 1)
    admin.execute_command("ACL", "SETUSER", "sub", "&extra")  # adds a channel: nobody is disconnected
    assert admin.pubsub_numsub("alerts")[0][1] == 1
    admin.execute_command("ACL", "SETUSER", "sub", "resetchannels", "&news:*")
    wait_until(lambda: admin.pubsub_numsub("alerts")[0][1] == 0)
    subscriber.close()

    admin.execute_command("ACL", "SETUSER", "gone", "on", ">pw", "+@all", "~*")
    gone = _user(respq_server, "gone")
    gone.ping()
    wait_until(lambda: any(c["user"] == "gone" for c in admin.client_list()))
    assert admin.acl_deluser("gone") == 1
    wait_until(lambda: not any(c["user"] == "gone" for c in admin.client_list()))
    gone.close()


def test_acl_save_and_config_rewrite_keep_users_across_a_restart(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\n")
    server = start_respq(tmp_path / "data", "--aclfile", str(aclfile))
    try:
        admin = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
        admin.execute_command("ACL", "SETUSER", "keep", "on", ">pw", "~jobs:*", "+@list")
        assert admin.execute_command("ACL", "SAVE") == b"OK"
        admin.execute_command("ACL", "SETUSER", "lost", "on", ">pw", "+@all")
        lost = _user(server, "lost")
        lost.ping()
        assert admin.execute_command("ACL", "LOAD") == b"OK"
        assert admin.acl_users() == ["default", "keep"]
        # Users the file replaced lose their connections, as Redis frees the old users' clients.
        wait_until(lambda: not any(c["user"] == "lost" for c in admin.client_list()))
        lost.close()
    finally:
        server.stop()
    assert "user keep on #" in aclfile.read_text()
    server = start_respq(tmp_path / "data", "--aclfile", str(aclfile))
    try:
        assert _user(server, "keep").rpush("jobs:1", "a") == 1
    finally:
        server.stop()

    conf = tmp_path / "respq.conf"
    conf.write_text(f"dir {tmp_path / 'data2'}\nuser svc on >pw ~q:* +@list\n")
    (tmp_path / "data2").mkdir()
    server = _start_with_file(conf)
    try:
        admin = redis.Redis(port=server.port, protocol=2, socket_timeout=10)
        assert _user(server, "svc").rpush("q:1", "a") == 1
        admin.execute_command("ACL", "SETUSER", "svc2", "on", ">pw2", "~*", "+get")
        assert admin.config_rewrite()
    finally:
        server.stop()
    text = conf.read_text()
    assert "user svc on #" in text and "user svc2 on #" in text
    server = _start_with_file(conf)
    try:
        assert _user(server, "svc2", "pw2").get("x") is None
    finally:
        server.stop()


def _start_with_file(conf: Path) -> ServerProcess:
    process = ServerProcess([sys.executable, "-m", "respq", "serve", str(conf), "--port", "0"])
    process.wait_ready()
    return process


def test_users_lines_and_aclfile_together_refuse_to_start(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("")
    conf = tmp_path / "respq.conf"
    conf.write_text(f"dir {tmp_path}\nport 0\naclfile {aclfile}\nuser svc on >pw\n")
    done = subprocess.run(
        [sys.executable, "-m", "respq", "serve", str(conf)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert b"please define either an ACL file or declare users directly" in done.stdout + done.stderr


def test_a_bad_rule_in_a_user_line_refuses_to_start_with_redis_lines(tmp_path: Path) -> None:
    conf = tmp_path / "respq.conf"
    conf.write_text(f"dir {tmp_path}\nport 0\nuser alice on >pw ~* +nosuchcommand\n")
    done = subprocess.run(
        [sys.executable, "-m", "respq", "serve", str(conf)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).decode().splitlines()
    messages = [line.split(" # ", 1)[-1] for line in lines if " # " in line]
    assert messages[-2:] == [
        "Error loading ACL rule '+nosuchcommand' for the user named 'alice': Unknown command or category name in ACL",
        "Critical error while loading ACLs. Exiting.",
    ]
