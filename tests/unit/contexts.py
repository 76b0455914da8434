"""A command context over an engine on a temporary directory, with no Server and no sockets: handler tests for
commands of any type start here."""

from __future__ import annotations

from pathlib import Path

from respq.blocking import BlockingRegistry
from respq.client import Client
from respq.commands.context import Context
from respq.commands.modules import load_all
from respq.config import load_config
from respq.keyspace import Keyspace
from respq.pubsub import PubSub
from respq.scripting.engine import ScriptEngine
from respq.stats import Stats
from respq.storage.engine import Engine
from respq.types import REGISTRY

_next_port = iter(range(40000, 50000))


class StubControl:
    """The ServerControl of a server that has loaded, is not paused and ignores shutdown and config changes."""

    loading = False
    busy_error = None
    paused_until = 0.0
    pause_writes_only = False

    def __init__(self) -> None:
        self.scripts = ScriptEngine(lambda level, message: None)

    def unpause(self) -> None:
        self.paused_until = 0.0

    def request_shutdown(self) -> None:
        pass

    def apply_config(self, changed: list[str]) -> None:
        pass


def new_client() -> Client:
    return Client(f"127.0.0.1:{next(_next_port)}", "127.0.0.1:6379", authenticated=True)


def bare_context(directory: Path) -> Context:
    """The context of one client over a fresh engine in ``directory``; close ``ctx.engine`` when done.
    ``ctx.for_client(new_client())`` gives a second client of the same keyspace."""
    load_all()  # every command registered, for the dispatcher
    config = load_config(["--dir", str(directory), "--loglevel", "warning"])
    engine = Engine.open(str(directory), types=REGISTRY, databases=config.databases, log=lambda level, message: None)
    stats = Stats()
    blocking = BlockingRegistry()
    client = new_client()
    return Context(
        client,
        keyspace=Keyspace(engine, databases=config.databases, stats=stats, blocking=blocking),
        engine=engine,
        blocking=blocking,
        pubsub=PubSub(),
        stats=stats,
        config=config,
        clients={client.id: client},
        server=StubControl(),  # type: ignore[arg-type]  # INFO's fields are not needed here
    )
