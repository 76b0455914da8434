"""Every command respq has belongs to the ACL categories Redis 7.0 gives it, in Redis's order: COMMAND INFO, ACL CAT
and the +@category rules all read them from the command table."""

from __future__ import annotations

import redis

from conftest import ServerProcess


def _categories(server: ServerProcess) -> dict[str, list[str]]:
    connection = redis.Connection(port=server.port, protocol=2, socket_timeout=10)
    connection.connect()
    try:
        connection.send_command("COMMAND")
        entries = connection.read_response()
    finally:
        connection.disconnect()
    found: dict[str, list[str]] = {}

    def walk(entry: list) -> None:  # type: ignore[type-arg]
        found[entry[0].decode()] = [category.decode() for category in entry[6]]
        for sub in entry[9]:
            walk(sub)

    for entry in entries:
        walk(entry)
    return found


def test_categories_are_redis_7_0_s(respq_server: ServerProcess, redis_oracle: ServerProcess) -> None:
    mine, theirs = _categories(respq_server), _categories(redis_oracle)
    differences = [
        f"{name}: respq {categories}, redis {theirs[name]}"
        for name, categories in sorted(mine.items())
        if name in theirs and categories != theirs[name]
    ]
    assert not differences, "\n".join(differences)
    assert len([name for name in mine if name in theirs]) > 250  # commands and subcommands compared
