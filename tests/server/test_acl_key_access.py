"""Which keys' read or write access each command needs, decided by ACL DRYRUN on respq and on redis-server for
users holding read-only, write-only and mixed key patterns: every command respq has that names keys, both agree."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest
import redis

from conftest import ServerProcess

CALLS = """
get K|set K v|set K v GET|getdel K|getex K|incr K|append K v|strlen K|mget K K2|mset K v K2 v|msetnx K v K2 v
setrange K 0 v|getrange K 0 1|bitfield K GET u8 0|bitfield K SET u8 0 1|bitcount K|setbit K 1 1|getbit K 1
bitop AND K K2 K3|bitpos K 1
lpush K v|rpush K v|lpushx K v|lpop K|rpop K|llen K|lrange K 0 1|lindex K 0|lset K 0 v|lrem K 0 v|ltrim K 0 1
linsert K BEFORE a b|lpos K v|lmove K K2 LEFT RIGHT|blmove K K2 LEFT RIGHT 0|rpoplpush K K2|brpoplpush K K2 0
blpop K K2 0|brpop K K2 0|lmpop 2 K K2 LEFT|blmpop 0 2 K K2 LEFT
xadd K * f v|xlen K|xrange K - +|xrevrange K + -|xdel K 1-1|xtrim K MAXLEN 1|xread STREAMS K K2 0 0
xread COUNT 1 STREAMS K 0|xreadgroup GROUP g c STREAMS K >|xack K g 1-1|xpending K g|xclaim K g c 0 1-1
xautoclaim K g c 0 0|xgroup CREATE K g 0|xgroup DESTROY K g|xinfo STREAM K|xsetid K 1-1
hset K f v|hget K f|hgetall K|hdel K f|hincrby K f 1|hexists K f|hkeys K|hlen K|hmget K f|hsetnx K f v
hrandfield K|hscan K 0
sadd K a|srem K a|smembers K|sismember K a|scard K|spop K|srandmember K|smove K K2 a|sinter K K2|sinterstore K K2 K3
sunion K K2|sunionstore K K2 K3|sdiff K K2|sdiffstore K K2 K3|sintercard 2 K K2|smismember K a|sscan K 0
zadd K 1 a|zrem K a|zrange K 0 1|zrangestore K K2 0 1|zscore K a|zincrby K 1 a|zcard K|zcount K 0 1|zpopmin K
bzpopmin K 0|zunionstore K 2 K2 K3|zinterstore K 2 K2 K3|zdiffstore K 2 K2 K3|zunion 2 K K2|zinter 2 K K2
zdiff 2 K K2|zmpop 2 K K2 MIN|bzmpop 0 2 K K2 MIN|zrangebyscore K 0 1|zrank K a|zintercard 2 K K2
del K K2|unlink K|exists K K2|type K|expire K 1|ttl K|persist K|rename K K2|renamenx K K2|copy K K2|move K 1
touch K|dump K|restore K 0 x|object encoding K|sort K|sort K STORE K2|sort_ro K|eval "return 1" 2 K K2
eval_ro "return 1" 1 K|evalsha 0000000000000000000000000000000000000000 1 K|fcall f 1 K|fcall_ro f 1 K
watch K K2|memory usage K|migrate 127.0.0.1 1 K 0 10 COPY|migrate 127.0.0.1 1 "" 0 10 KEYS K K2
"""
USERS = {"r": ["%R~K*"], "w": ["%W~K*"], "rw1": ["%R~K", "%W~K2", "~K3"], "rw2": ["%W~K", "%R~K2", "%R~K3"]}


@pytest.fixture
def both(respq_server: ServerProcess, redis_oracle: ServerProcess) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    clients = tuple(redis.Redis(port=server.port, protocol=2, socket_timeout=10) for server in (respq_server,
                                                                                                redis_oracle))
    for client in clients:
        for name, rules in USERS.items():
            client.execute_command("ACL", "SETUSER", name, "on", "nopass", "+@all", *rules)
    try:
        yield clients  # type: ignore[misc]
    finally:
        for client in clients:
            client.execute_command("ACL", "DELUSER", *USERS)
            client.close()


def _dryrun(client: redis.Redis, user: str, argv: list[str]) -> object:
    try:
        return client.execute_command("ACL", "DRYRUN", user, *argv)
    except redis.ResponseError as error:
        return f"error: {error}"


def test_key_access_matches_redis_for_every_command(both: tuple[redis.Redis, redis.Redis]) -> None:
    respq, oracle = both
    differences = []
    for call in CALLS.replace("\n", "|").split("|"):
        if not call:
            continue
        argv = shlex.split(call)
        for user in USERS:
            mine, theirs = _dryrun(respq, user, argv), _dryrun(oracle, user, argv)
            if mine != theirs:
                differences.append(f"{user} {call}: respq {mine!r}, redis {theirs!r}")
    assert not differences, "\n".join(differences)
