"""respq in-process: durable queues inside a Python application, with no server to run (``respq.open``).

The engine is the server's own: ``respq.server.Server`` runs on a thread of its own, inside a Trio loop of its own,
with no listener (``serve_in_background`` adds one). Every operation is handed to that thread, run there by the same
command handlers a RESP client reaches (so its semantics, errors and durability are the server's), and its result is
handed back once what it changed is as durable as ``appendfsync`` promises. Replies wait for durability together:
under ``always`` one journal write and one fdatasync (the server's syncer, in a worker thread: the committer)
acknowledge every operation that ran while the previous sync was in flight, from every thread.

``Queues`` is the blocking API, for any thread. ``AsyncQueues`` (``respq.open_async``) offers the same operations as
coroutines, under Trio or asyncio: the caller's loop never blocks, and only the waiting task waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import sniffio
import trio

from respq.blocking import Block, Waiter
from respq.client import Client
from respq.commands.context import Context
from respq.commands.dispatch import blocked, execute, served, unblocked
from respq.config import ConfigError, load_config
from respq.errors import DataDirectoryLocked, StartupError
from respq.log import Logger
from respq.replies import NULL_ARRAY, ErrorReply, StreamedArray
from respq.server import DISK_FULL_RETRY, Server
from respq.storage.errors import DiskFullError, StorageError

__all__ = [
    "AsyncPipeline",
    "AsyncQueues",
    "DataDirectoryLocked",
    "Entry",
    "Pipeline",
    "QueueClosed",
    "QueueError",
    "Queues",
    "open",
    "open_async",
    "serve_in_background",
]

T = TypeVar("T")
Value = bytes | str  # str values and names are stored as their UTF-8 bytes
Entry = tuple[bytes, dict[bytes, bytes]]  # a stream entry: its ID and its fields


class QueueError(Exception):
    """An operation the engine refused, with the error a RESP client would get (``WRONGTYPE ...``, ``NOGROUP ...``,
    ``MISCONF ...`` when the disk failed)."""


class QueueClosed(QueueError):
    """The queues were closed (or the engine stopped) before the operation could finish."""


CLOSED = "the queues are closed"
LOOPBACK = "127.0.0.1"
STOPPED_POLL = 1.0  # seconds between checks that the engine thread still runs, while a call waits for it
YIELD_TO_CALLERS = 0.001  # seconds the engine thread, waking, lets callers waiting for the engine lock go first
MISCONF = "MISCONF the change cannot be made durable: {}"


def _b(value: Value) -> bytes:
    return value.encode() if type(value) is str else value  # type: ignore[return-value]


def _timeout_arg(timeout: float | None) -> bytes:
    """BLMPOP's timeout argument: None waits forever (Redis's 0)."""
    return b"0" if timeout is None else b"%.3f" % max(timeout, 0.001)


# ---- operations: the commands they run and how their replies read ------------------------------------------------
@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond per operation
class _Op(Generic[T]):
    commands: list[list[bytes]]
    read: Callable[[list[Any]], T]
    blocking: bool = False  # one command, which may wait for a key (run by a client of its own)
    reads_errors: bool = False  # ``read`` takes error replies too (else they raise QueueError)


def _one(replies: list[Any]) -> Any:
    return replies[0]


def _values(reply: Any) -> list[bytes]:
    """A pop's or a range's reply as a list: nil (nothing there) is empty."""
    if reply is None or reply is NULL_ARRAY:
        return []
    if type(reply) is bytes:
        return [reply]
    return list(reply)


def _mpop_values(replies: list[Any]) -> list[bytes]:
    reply = replies[0]
    return [] if reply is None or reply is NULL_ARRAY else list(reply[1])  # [key, [values...]]


def _entry(item: Any) -> Entry:
    entry_id, fields = item
    if fields is None:  # a pending entry deleted since it was delivered
        return entry_id, {}
    return entry_id, dict(zip(fields[::2], fields[1::2], strict=True))


def _entries(items: Any) -> list[Entry]:
    return [_entry(item) for item in items or ()]


def _read_group_entries(replies: list[Any]) -> list[Entry]:
    reply = replies[0]
    if reply is None or reply is NULL_ARRAY:
        return []
    streams = list(reply.items()) if type(reply) is dict else reply
    return _entries(streams[0][1]) if streams else []


def _push(queue: Value, values: Iterable[Value]) -> _Op[int]:
    argv = [b"RPUSH", _b(queue)]
    argv += values
    if str in set(map(type, argv)):  # a third of the cost of converting each value, when all are bytes
        argv = list(map(_b, argv))
    if len(argv) == 2:  # nothing to push: the length as it is
        return _Op([[b"LLEN", argv[1]]], _one)
    return _Op([argv], _one)


def _pop(queue: Value, count: int) -> _Op[list[bytes]]:
    return _Op([[b"LPOP", _b(queue), b"%d" % count]], lambda replies: _values(replies[0]))


def _pop_wait(queue: Value, count: int, timeout: float | None) -> _Op[list[bytes]]:
    argv = [b"BLMPOP", _timeout_arg(timeout), b"1", _b(queue), b"LEFT", b"COUNT", b"%d" % count]
    return _Op([argv], _mpop_values, blocking=True)


def _peek(queue: Value, count: int) -> _Op[list[bytes]]:
    return _Op([[b"LRANGE", _b(queue), b"0", b"%d" % (count - 1)]], lambda replies: _values(replies[0]))


def _add(stream: Value, fields: Mapping[Value, Value], entry_id: Value, maxlen: int | None) -> list[bytes]:
    argv = [b"XADD", _b(stream)]
    if maxlen is not None:
        argv += [b"MAXLEN", b"~", b"%d" % maxlen]
    argv.append(_b(entry_id))
    for name, value in fields.items():
        argv += [_b(name), _b(value)]
    return argv


def _add_many(stream: Value, entries: Iterable[Mapping[Value, Value]], maxlen: int | None) -> _Op[list[bytes]]:
    return _Op([_add(stream, fields, b"*", maxlen) for fields in entries], list)


def _create_group(stream: Value, group: Value, start: Value) -> _Op[bool]:
    argv = [b"XGROUP", b"CREATE", _b(stream), _b(group), _b(start), b"MKSTREAM"]

    def read(replies: list[Any]) -> bool:
        reply = replies[0]
        if type(reply) is ErrorReply and reply.message.startswith(b"BUSYGROUP"):
            return False  # exists already: creating it is idempotent here
        return _checked(reply) is not None

    return _Op([argv], read, reads_errors=True)


def _read_group(
    stream: Value, group: Value, consumer: Value, count: int, block: float | None, start: Value
) -> _Op[list[Entry]]:
    argv = [b"XREADGROUP", b"GROUP", _b(group), _b(consumer), b"COUNT", b"%d" % count]
    if block is not None:
        argv += [b"BLOCK", b"%d" % max(int(block * 1000), 1)]
    argv += [b"STREAMS", _b(stream), _b(start)]
    return _Op([argv], _read_group_entries, blocking=block is not None)


def _ack(stream: Value, group: Value, ids: Sequence[Value]) -> _Op[int]:
    if not ids:
        return _Op([], lambda replies: 0)
    return _Op([[b"XACK", _b(stream), _b(group), *map(_b, ids)]], _one)


def _claim(stream: Value, group: Value, consumer: Value, min_idle: float, ids: Sequence[Value]) -> _Op[list[Entry]]:
    if not ids:
        return _Op([], lambda replies: [])
    argv = [b"XCLAIM", _b(stream), _b(group), _b(consumer), b"%d" % int(min_idle * 1000), *map(_b, ids)]
    return _Op([argv], lambda replies: _entries(r for r in replies[0] if r is not None))


def _autoclaim(
    stream: Value, group: Value, consumer: Value, min_idle: float, start: Value, count: int
) -> _Op[tuple[bytes, list[Entry]]]:
    argv = [b"XAUTOCLAIM", _b(stream), _b(group), _b(consumer), b"%d" % int(min_idle * 1000), _b(start)]
    argv += [b"COUNT", b"%d" % count]
    return _Op([argv], lambda replies: (replies[0][0], _entries(replies[0][1])))


def _len(name: Value, command: bytes) -> _Op[int]:
    return _Op([[command, _b(name)]], _one)


def _delete(names: Sequence[Value]) -> _Op[int]:
    if not names:
        return _Op([], lambda replies: 0)
    return _Op([[b"DEL", *map(_b, names)]], _one)


def _batched(ops: list[_Op[Any]], raise_on_error: bool) -> _Op[list[Any]]:
    """A pipeline's operations as one: their commands run in order with no other call between them, and their
    results are read back per operation (errors in place, as QueueError, unless ``raise_on_error``)."""

    def read(replies: list[Any]) -> list[Any]:
        results: list[Any] = []
        first_error: QueueError | None = None
        position = 0
        for op in ops:
            count = len(op.commands)
            try:
                results.append(_answer(op, replies[position : position + count]))
            except QueueError as error:
                results.append(error)
                first_error = first_error or error
            position += count
        if first_error is not None and raise_on_error:
            raise first_error
        return results

    return _Op([argv for op in ops for argv in op.commands], read, reads_errors=True)


def _answer(op: _Op[T], replies: list[Any]) -> T:
    if not op.reads_errors:
        for reply in replies:
            _checked(reply)
    return op.read(replies)


def _checked(reply: Any) -> Any:
    if type(reply) is ErrorReply:
        raise QueueError(reply.message.decode(errors="replace"))
    return reply


# ---- the engine thread --------------------------------------------------------------------------------------------
class _Call:
    """One operation on its way through the engine thread; ``notify`` wakes its caller once it has finished."""

    __slots__ = ("client", "commands", "error", "notify", "replies", "waiter")

    def __init__(self, commands: list[list[bytes]], notify: Callable[[], None]) -> None:
        self.commands = commands
        self.notify = notify
        self.replies: list[Any] = []
        self.error: BaseException | None = None
        self.client: Client | None = None  # a blocking call's own client (a waiter is registered per client)
        self.waiter: Waiter | None = None

    def finish(self, replies: list[Any] | None = None, error: BaseException | None = None) -> None:
        if replies is not None:
            self.replies = replies
        self.error = error
        self.notify()


class _LoopLock(trio.abc.Instrument):
    """The engine lock: held by the engine thread except while its loop waits for I/O (its idle time), so that a
    caller thread holding it may run commands on the engine itself, without handing them over. Callers waiting go
    first when the loop wakes, for at most YIELD_TO_CALLERS: neither side starves the other."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanting = 0  # caller threads waiting for the lock (changed under the GIL: a hint, not a count to trust)

    def acquire(self) -> None:
        """Caller threads: waits for the lock."""
        self.wanting += 1
        try:
            self.lock.acquire()
        finally:
            self.wanting -= 1

    def before_io_wait(self, timeout: float) -> None:
        self.lock.release()

    def after_io_wait(self, timeout: float) -> None:
        if self.wanting:
            deadline = time.monotonic() + YIELD_TO_CALLERS
            while self.wanting and time.monotonic() < deadline:
                time.sleep(0)  # lets the waiting callers take the lock first
        self.lock.acquire()


def _gate() -> threading.Lock:
    gate = threading.Lock()
    gate.acquire()
    return gate


class _Committer:
    """Group commit for calls run on caller threads under ``always``: one thread writes and syncs the journal for
    every call that ran before it took the engine lock to write, while the calls running meanwhile wait for the next
    round.

    Each round has a gate, a lock held until its sync is done: a caller takes the round's gate while it still holds
    the engine lock (so the round's write covers what it ran), and waits by acquiring the gate, then releasing it for
    the next waiter. Waking the round's callers is thus one release for the committer, then one per caller, each
    woken by the previous one: the committer goes back to writing at once, instead of waking every caller itself
    under the GIL (a condition variable's notify_all), each woken caller then queueing for the condition's lock."""

    def __init__(self, server: Server, loop_lock: _LoopLock) -> None:
        self.server = server
        self.loop_lock = loop_lock
        # Under the engine lock: the round callers join, and whether the committer was woken for it already.
        self.gate = _gate()
        self.kicked = False
        self.wake = _gate()  # released (once per round) by the first caller with something to sync
        self.durable = 0  # synced up to here
        self.error: str | None = None  # the journal cannot be made durable (writes are disabled)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="respq-committer", daemon=True)
        self.thread.start()

    def join(self) -> threading.Lock:
        """Caller threads, under the engine lock, having changed something: the gate to wait on (``wait``)."""
        if not self.kicked:
            self.kicked = True
            with contextlib.suppress(RuntimeError):  # released by stop() already
                self.wake.release()
        return self.gate

    def wait(self, gate: threading.Lock, position: int) -> None:
        """Caller threads: returns once the journal is synced up to ``position``; QueueError if it never will be."""
        if self.error is None and not self.stopping:
            gate.acquire()
            gate.release()  # wakes the next caller waiting for this round
        if self.durable < position:
            raise QueueError(MISCONF.format(self.error)) if self.error else QueueClosed(CLOSED)

    def finish(self, error: str | None) -> None:
        """close(): the engine stopped, with its final checkpoint (every change durable) or with ``error``."""
        if error is None:
            self.durable = sys.maxsize
        else:
            self.error = self.error or error
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        with contextlib.suppress(RuntimeError):  # released already: the committer is awake anyway
            self.wake.release()
        self.thread.join()
        with contextlib.suppress(RuntimeError):  # the last round's callers, if its sync never came
            self.gate.release()

    def _run(self) -> None:
        server = self.server
        engine = server.engine
        assert engine is not None
        while True:
            self.wake.acquire()
            while True:  # until this round is synced (or failed)
                if self.stopping:
                    return
                self.loop_lock.acquire()
                gate = self.gate
                target: int | StorageError | None = None
                try:
                    # Once shutdown began the engine is being closed in a worker thread: its checkpoint makes every
                    # change durable, and close() then releases the callers still waiting. Nothing more is written.
                    if server.shutdown_requested.is_set():
                        return
                    target = engine.flush()  # the journal's buffers, under the lock
                except DiskFullError:
                    target = None  # the records stay buffered; writing resumes when space returns
                except StorageError as error:
                    target = error
                finally:
                    if target is not None:  # this round is closed: callers from now on wait for the next one
                        self.gate, self.kicked = _gate(), False
                    self.loop_lock.lock.release()
                if target is None:
                    time.sleep(DISK_FULL_RETRY)
                    continue
                if not isinstance(target, StorageError):
                    try:
                        engine.sync(target)  # outside the lock: callers run (and join the next round) meanwhile
                    except StorageError as error:
                        target = error
                if isinstance(target, StorageError):
                    self.error = str(target)
                else:
                    server.durable_lsn = max(server.durable_lsn, target)
                    self.durable = max(self.durable, target)
                gate.release()
                break


class _Engine:
    """The server's engine on a thread of its own (``respq-engine``), with no listener until ``listen``."""

    def __init__(self, path: str, appendfsync: str, options: Mapping[str, str], log: Logger) -> None:
        args = ["--dir", path, "--appendfsync", appendfsync, "--bind", LOOPBACK, "--port", "0"]
        for name, value in options.items():
            args += [f"--{name}", value]
        try:
            config = load_config(args)
        except ConfigError as error:
            raise ValueError(error.message) from None
        self.server = Server(config, log)
        self.token: trio.lowlevel.TrioToken | None = None
        self._client = Client("embedded", "embedded", authenticated=True)
        self._ctx: Context | None = None
        self._acks: list[_Call] = []  # calls run whose replies wait for what they changed to be durable
        self._ack_wanted: trio.Event | None = None
        self._waiting: set[_Call] = set()  # blocking calls parked on keys
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self.loop_lock = _LoopLock()
        self._committer: _Committer | None = None  # started once the engine is open, under ``always``
        self._thread = threading.Thread(target=self._main, name="respq-engine", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        if config.appendfsync == "always":
            self._committer = _Committer(self.server, self.loop_lock)

    # -- the thread
    def _main(self) -> None:
        self.loop_lock.lock.acquire()  # released while the loop waits for I/O (its instrument)
        try:
            trio.run(self._run, instruments=[self.loop_lock])
        except BaseException as error:  # reported to the opener, or to the calls still waiting
            self._failure = error
        finally:
            self.loop_lock.lock.release()
            self._ready.set()
            # Calls still waiting when the loop ended: the engine's close checkpointed what they changed, so those
            # waiting for durability are acknowledged; blocking ones never got their values.
            closed = QueueClosed(CLOSED)
            for call in self._acks:
                call.finish(error=self._failure and closed)
            for call in self._waiting:
                call.finish(error=closed)
            self._acks = []
            self._waiting = set()

    async def _run(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._ack_wanted = trio.Event()
        await self.server.run(task_status=self, embedded=True)

    def started(self, _port: int = 0) -> None:
        """The server's task status: the data is loaded and the background work runs."""
        server = self.server
        self._ctx = server.context(self._client)
        server.nursery.start_soon(self._acknowledger)
        self._ready.set()

    # -- running calls (engine thread)
    def submit(self, call: _Call, blocking: bool) -> None:
        """Any thread: runs ``call`` on the engine thread, then wakes its caller."""
        token = self.token
        if token is None or self._failure is not None:
            raise QueueClosed(CLOSED)
        try:
            token.run_sync_soon(self._start_blocking if blocking else self._start, call)
        except trio.RunFinishedError:
            raise QueueClosed(CLOSED) from None

    def run_here(self, commands: list[list[bytes]]) -> list[Any] | None:
        """Caller threads: runs the commands on this thread, under the engine lock, and returns their replies once
        durable. None when they must run on the engine thread instead: while RESP clients are connected or callers
        wait on keys (the loop serves those in order, right after the command that feeds them)."""
        server = self.server
        loop_lock = self.loop_lock
        loop_lock.acquire()
        try:
            if self.token is None or server.shutdown_requested.is_set():
                raise QueueClosed(CLOSED)
            if server.connections or server.blocking.by_client:
                return None
            ctx = self._ctx
            assert ctx is not None
            replies = [execute(ctx, argv) for argv in commands]
            for index, reply in enumerate(replies):
                if type(reply) is StreamedArray:
                    replies[index] = reply.materialize()
            engine = server.engine
            assert engine is not None
            needed = engine.pending_lsn()
            committer = self._committer
            if committer is None:  # everysec, no: written to the journal before the reply, as make_durable does
                if needed <= engine.flushed_lsn() or server.durable_now():
                    return replies
            elif needed <= server.durable_lsn:
                return replies
            else:
                gate = committer.join()  # under the lock: the next round's write covers what ran here
        finally:
            loop_lock.lock.release()
        if committer is not None:
            committer.wait(gate, needed)
            return replies
        self._wait_durable()  # the disk is full: the engine thread retries until it takes the journal
        return replies

    def _wait_durable(self) -> None:
        done = threading.Lock()
        done.acquire()
        call = _Call([], done.release)
        self.submit(call, False)
        self.wait(done)
        if call.error is not None:
            raise call.error

    def _start(self, call: _Call) -> None:
        try:
            ctx = self._ctx
            assert ctx is not None
            if self.server.shutdown_requested.is_set():
                call.finish(error=QueueClosed(CLOSED))
                return
            replies = [execute(ctx, argv) for argv in call.commands]
            self._ran(call, replies)
        except BaseException as error:  # never into Trio's run_sync_soon: it would end the loop
            call.finish(error=error)

    def _start_blocking(self, call: _Call) -> None:
        try:
            if self.server.shutdown_requested.is_set():
                call.finish(error=QueueClosed(CLOSED))
                return
            client = call.client = Client("embedded", "embedded", authenticated=True)
            ctx = self.server.context(client)
            argv = call.commands[0]
            reply = execute(ctx, argv)
            if type(reply) is not Block:
                self._ran(call, [reply])
                return
            blocked(ctx, reply)
            waiter = call.waiter = Waiter(
                client.id, client.db, reply, on_served=lambda served_reply: served(ctx, argv, served_reply)
            )
            if reply.timeout is not None:
                waiter.deadline = trio.current_time() + reply.timeout
            self.server.blocking.add(waiter)
            self._waiting.add(call)
            self.server.nursery.start_soon(self._wait, call, ctx, argv)
        except BaseException as error:
            call.finish(error=error)

    async def _wait(self, call: _Call, ctx: Context, argv: list[bytes]) -> None:
        waiter = call.waiter
        assert waiter is not None
        blocking = self.server.blocking
        try:
            with trio.move_on_at(waiter.deadline):
                await waiter.done.wait()
        finally:
            blocking.remove(waiter)
        self._waiting.discard(call)
        if waiter.done.is_set():
            if waiter.served:
                unblocked(ctx, argv, waiter.block)
            self._ran(call, [waiter.reply])
        else:
            self._ran(call, [waiter.block.timeout_reply])

    def cancel(self, call: _Call) -> None:
        """Any thread: a blocking call's caller stopped waiting (cancelled): its waiter leaves the keys, so that no
        value is handed to a caller gone."""
        token = self.token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self._unblock, call)

    def _unblock(self, call: _Call) -> None:
        waiter = call.waiter
        if waiter is not None and not waiter.done.is_set():
            self.server.blocking.unblock(waiter.client_id, waiter.block.timeout_reply)

    def _ran(self, call: _Call, replies: list[Any]) -> None:
        """The call's commands ran: it is answered at once if they changed nothing not yet durable, else by the
        acknowledger, with every call that ran meanwhile."""
        server = self.server
        if server.blocking.ready:  # a push serves the callers and clients blocked on its key, as after a command
            server.blocking.serve_ready()
        for index, reply in enumerate(replies):
            if type(reply) is StreamedArray:
                replies[index] = reply.materialize()
        engine = server.engine
        assert engine is not None
        needed = engine.pending_lsn()
        if server.config.appendfsync == "always":
            durable = needed <= server.durable_lsn
        else:  # written to the journal at once (what make_durable does), unless the disk refuses it for now
            durable = needed <= engine.flushed_lsn() or server.durable_now()
        if durable:
            call.finish(replies)
            return
        call.replies = replies
        self._acks.append(call)
        assert self._ack_wanted is not None
        self._ack_wanted.set()

    async def _acknowledger(self) -> None:
        """Group commit for in-process callers: one wait for durability (one journal sync under ``always``) answers
        every call that ran before it began."""
        server = self.server
        while True:
            assert self._ack_wanted is not None
            await self._ack_wanted.wait()
            self._ack_wanted = trio.Event()
            calls, self._acks = self._acks, []
            try:
                # As the reactor does: syncing on this thread saves two thread switches per group commit; calls
                # arriving meanwhile run together afterwards and share the next one.
                if not server.sync_now():
                    await server.make_durable()
            except StorageError as error:
                failure = QueueError(MISCONF.format(error))
                for call in calls:
                    call.finish(error=failure)
                continue
            for call in calls:
                call.finish()

    # -- control (any thread)
    def run_in_loop(self, function: Callable[[], T]) -> T:
        token = self.token
        if token is None or self._failure is not None:
            raise QueueClosed(CLOSED)
        done = threading.Lock()
        done.acquire()
        result: list[Any] = []

        def run() -> None:
            try:
                result.append((function(), None))
            except BaseException as error:  # handed to the caller, never into Trio's run_sync_soon
                result.append((None, error))
            done.release()

        # Not trio.from_thread: that refuses callers inside a Trio loop of their own, and this returns at once.
        try:
            token.run_sync_soon(run)
        except trio.RunFinishedError:
            raise QueueClosed(CLOSED) from None
        self.wait(done)
        value, error = result[0]
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def wait(self, done: threading.Lock) -> None:
        """Any thread: waits for a call handed to the engine thread to release ``done``; QueueClosed if that thread
        ended without running it."""
        while not done.acquire(timeout=STOPPED_POLL):
            if not self._thread.is_alive() and not done.acquire(blocking=False):
                raise QueueClosed(CLOSED)

    def listen(self, host: str, port: int) -> int:
        def start() -> int:
            if self.server.listeners:
                raise RuntimeError(f"already serving on port {self.server.port}")
            values = self.server.config.values
            values["bind"] = [host]
            values["port"] = port
            return self.server.listen()

        return self.run_in_loop(start)

    def close(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("close() from the engine's own thread")
        token = self.token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self.server.request_shutdown)
        self._thread.join()
        self.token = None
        committer = self._committer
        if committer is not None:  # the close checkpointed everything, unless it failed: release the waiters
            committer.finish(None if self._failure is None else str(self._failure))


def _log(loglevel: str) -> Logger:
    log = Logger(loglevel)
    log.stream = sys.stderr  # the application's standard output is its own
    return log


# ---- the public objects -------------------------------------------------------------------------------------------
class _Base:
    def __init__(self, engine: _Engine, path: str) -> None:
        self._engine = engine
        self.path = path

    @property
    def port(self) -> int | None:
        """The RESP port ``serve_in_background`` opened, or None."""
        return self._engine.server.port if self._engine.server.listeners else None

    def serve_in_background(self, port: int = 0, host: str = LOOPBACK) -> int:
        """Serves these queues over RESP too (redis-cli, redis-py, the dashboard) on ``host``:``port`` (0: a free
        port), from the engine's own thread, until closed. Returns the port. No password: keep it on loopback."""
        return self._engine.listen(host, port)


class _Gathered:
    """A pipeline's operations: the non-blocking methods of ``Queues``, each returning the pipeline (to chain),
    gathered until ``execute``."""

    def __init__(self) -> None:
        self._ops: list[_Op[Any]] = []

    def __len__(self) -> int:
        return len(self._ops)

    def _take(self, raise_on_error: bool) -> _Op[list[Any]]:
        ops, self._ops = self._ops, []
        return _batched(ops, raise_on_error)

    def push(self, queue: Value, values: Iterable[Value]) -> Self:
        self._ops.append(_push(queue, values))
        return self

    def pop(self, queue: Value, count: int = 1) -> Self:
        self._ops.append(_pop(queue, count))
        return self

    def peek(self, queue: Value, count: int = 1) -> Self:
        self._ops.append(_peek(queue, count))
        return self

    def len(self, queue: Value) -> Self:
        self._ops.append(_len(queue, b"LLEN"))
        return self

    def delete(self, *names: Value) -> Self:
        self._ops.append(_delete(names))
        return self

    def add(self, stream: Value, fields: Mapping[Value, Value], *, maxlen: int | None = None) -> Self:
        self._ops.append(_add_many(stream, [fields], maxlen))  # its result: a list of one ID
        return self

    def add_many(self, stream: Value, entries: Iterable[Mapping[Value, Value]], *, maxlen: int | None = None) -> Self:
        self._ops.append(_add_many(stream, entries, maxlen))
        return self

    def stream_len(self, stream: Value) -> Self:
        self._ops.append(_len(stream, b"XLEN"))
        return self

    def read_group(self, stream: Value, group: Value, consumer: Value, count: int = 1, *, start: Value = ">") -> Self:
        self._ops.append(_read_group(stream, group, consumer, count, None, start))
        return self

    def ack(self, stream: Value, group: Value, ids: Sequence[Value]) -> Self:
        self._ops.append(_ack(stream, group, ids))
        return self


class Pipeline(_Gathered):
    """``Queues.pipeline()``: operations gathered, then run together by ``execute`` (in order, with no other call
    between them) and acknowledged by one wait for durability: the in-process form of a Redis pipeline, for a
    caller that wants many operations in flight under ``appendfsync always`` (one sync for all of them)."""

    def __init__(self, queues: Queues) -> None:
        super().__init__()
        self._queues = queues

    def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Runs the gathered operations and empties the pipeline; returns their results in order, as the
        ``Queues`` methods return them (``add``: a list of one ID). A refused operation does not stop the others:
        its QueueError is raised once all ran, or, ``raise_on_error=False``, returned in its place."""
        return self._queues._do(self._take(raise_on_error))


class AsyncPipeline(_Gathered):
    """``AsyncQueues.pipeline()``: ``Pipeline`` with ``await execute()``."""

    def __init__(self, queues: AsyncQueues) -> None:
        super().__init__()
        self._queues = queues

    async def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        return await self._queues._do(self._take(raise_on_error))


class Queues(_Base):
    """Durable queues (lists) and streams of one data directory, for any thread of this process. Each method
    returns once what it changed is as durable as ``appendfsync`` promises (under ``always``: synced to disk, so it
    survives a crash or a power loss). Raises QueueError for what the engine refuses, QueueClosed once closed."""

    def _do(self, op: _Op[T]) -> T:
        if not op.commands:
            return op.read([])
        if not op.blocking:
            replies = self._engine.run_here(op.commands)
            if replies is not None:
                return _answer(op, replies)
        done = threading.Lock()
        done.acquire()
        call = _Call(op.commands, done.release)
        self._engine.submit(call, op.blocking)
        self._engine.wait(done)
        if call.error is not None:
            raise call.error
        return _answer(op, call.replies)

    def pipeline(self) -> Pipeline:
        """Gathers operations to run together, acknowledged by one sync: ``q.pipeline().push(a, v).pop(b, 10)
        .execute()``."""
        return Pipeline(self)

    # -- lists used as FIFO queues: push at the tail, pop from the head
    def push(self, queue: Value, values: Iterable[Value]) -> int:
        """Appends ``values`` to the tail of ``queue`` (created if missing) in one operation; returns its length."""
        return self._do(_push(queue, values))

    def pop(self, queue: Value, count: int = 1) -> list[bytes]:
        """Takes up to ``count`` values from the head of ``queue``; empty if there is none."""
        return self._do(_pop(queue, count))

    def pop_wait(self, queue: Value, count: int = 1, timeout: float | None = None) -> list[bytes]:
        """As ``pop``, waiting up to ``timeout`` seconds (None: for ever) for a value when the queue is empty; an
        empty list when the time passed. Waiting callers (and RESP clients) are served first come, first served."""
        if timeout is not None and timeout <= 0:
            return self.pop(queue, count)
        return self._do(_pop_wait(queue, count, timeout))

    def peek(self, queue: Value, count: int = 1) -> list[bytes]:
        """The first ``count`` values of ``queue``, left in place."""
        return self._do(_peek(queue, count))

    def len(self, queue: Value) -> int:
        """How many values ``queue`` holds (0 if missing)."""
        return self._do(_len(queue, b"LLEN"))

    def delete(self, *names: Value) -> int:
        """Deletes queues or streams with everything in them; returns how many existed."""
        return self._do(_delete(names))

    # -- streams with consumer groups
    def add(self, stream: Value, fields: Mapping[Value, Value], *, maxlen: int | None = None) -> bytes:
        """Appends an entry to ``stream`` (created if missing); returns its ID. ``maxlen`` trims the oldest entries
        beyond about that many."""
        return self._do(_add_many(stream, [fields], maxlen))[0]

    def add_many(
        self, stream: Value, entries: Iterable[Mapping[Value, Value]], *, maxlen: int | None = None
    ) -> list[bytes]:
        """Appends several entries in one operation; returns their IDs."""
        return self._do(_add_many(stream, entries, maxlen))

    def stream_len(self, stream: Value) -> int:
        return self._do(_len(stream, b"XLEN"))

    def create_group(self, stream: Value, group: Value, start: Value = "$") -> bool:
        """Creates ``group`` on ``stream`` (and the stream if missing), delivering what comes after ``start`` ($:
        only new entries, 0: everything). False if it exists already."""
        return self._do(_create_group(stream, group, start))

    def read_group(
        self,
        stream: Value,
        group: Value,
        consumer: Value,
        count: int = 1,
        *,
        block: float | None = None,
        start: Value = ">",
    ) -> list[Entry]:
        """Up to ``count`` entries never delivered to ``group`` (``start`` ">"), now pending for ``consumer`` until
        acknowledged; or (``start`` an ID) the consumer's own pending entries after it. ``block``: seconds to wait
        for new entries when there are none (None: do not wait)."""
        return self._do(_read_group(stream, group, consumer, count, block, start))

    def ack(self, stream: Value, group: Value, ids: Sequence[Value]) -> int:
        """Acknowledges delivered entries: they leave the group's pending list. Returns how many were pending."""
        return self._do(_ack(stream, group, ids))

    def claim(
        self, stream: Value, group: Value, consumer: Value, ids: Sequence[Value], *, min_idle: float = 0.0
    ) -> list[Entry]:
        """Takes over pending entries idle at least ``min_idle`` seconds (a crashed consumer's) for ``consumer``."""
        return self._do(_claim(stream, group, consumer, min_idle, ids))

    def autoclaim(
        self, stream: Value, group: Value, consumer: Value, *, min_idle: float, start: Value = "0", count: int = 100
    ) -> tuple[bytes, list[Entry]]:
        """Takes over up to ``count`` pending entries idle at least ``min_idle`` seconds, scanning from ``start``;
        returns the ID to continue from (b"0-0" once the scan is complete) and the entries."""
        return self._do(_autoclaim(stream, group, consumer, min_idle, start, count))

    # -- lifetime
    def close(self) -> None:
        """Checkpoints, stops the engine thread and releases the data directory. Idempotent."""
        self._engine.close()

    def __enter__(self) -> Queues:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncQueues(_Base):
    """``Queues``' operations as coroutines, for Trio and asyncio (detected per call): only the calling task waits.
    A task cancelled in ``pop_wait`` or a blocking ``read_group`` stops waiting on the queue at once."""

    async def _do(self, op: _Op[T]) -> T:
        if not op.commands:
            return op.read([])
        library = sniffio.current_async_library()
        if library == "trio":
            call = await self._trio_call(op)
        elif library == "asyncio":
            call = await self._asyncio_call(op)
        else:
            raise RuntimeError(f"unsupported async library: {library}")
        if call.error is not None:
            raise call.error
        return _answer(op, call.replies)

    async def _trio_call(self, op: _Op[Any]) -> _Call:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def notify() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        call = _Call(op.commands, notify)
        self._engine.submit(call, op.blocking)
        try:
            await done.wait()
        except trio.Cancelled:
            if op.blocking:
                self._engine.cancel(call)
            # A change is acknowledged by waiting for it: whatever it did stays done, whether or not awaited.
            raise
        return call

    async def _asyncio_call(self, op: _Op[Any]) -> _Call:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        def notify() -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop closed meanwhile
                loop.call_soon_threadsafe(settle)

        call = _Call(op.commands, notify)
        self._engine.submit(call, op.blocking)
        try:
            await done
        except asyncio.CancelledError:
            if op.blocking:
                self._engine.cancel(call)
            raise
        return call

    def pipeline(self) -> AsyncPipeline:
        """As ``Queues.pipeline``; ``await pipeline.execute()``."""
        return AsyncPipeline(self)

    async def push(self, queue: Value, values: Iterable[Value]) -> int:
        return await self._do(_push(queue, values))

    async def pop(self, queue: Value, count: int = 1) -> list[bytes]:
        return await self._do(_pop(queue, count))

    async def pop_wait(self, queue: Value, count: int = 1, timeout: float | None = None) -> list[bytes]:
        if timeout is not None and timeout <= 0:
            return await self.pop(queue, count)
        return await self._do(_pop_wait(queue, count, timeout))

    async def peek(self, queue: Value, count: int = 1) -> list[bytes]:
        return await self._do(_peek(queue, count))

    async def len(self, queue: Value) -> int:
        return await self._do(_len(queue, b"LLEN"))

    async def delete(self, *names: Value) -> int:
        return await self._do(_delete(names))

    async def add(self, stream: Value, fields: Mapping[Value, Value], *, maxlen: int | None = None) -> bytes:
        return (await self._do(_add_many(stream, [fields], maxlen)))[0]

    async def add_many(
        self, stream: Value, entries: Iterable[Mapping[Value, Value]], *, maxlen: int | None = None
    ) -> list[bytes]:
        return await self._do(_add_many(stream, entries, maxlen))

    async def stream_len(self, stream: Value) -> int:
        return await self._do(_len(stream, b"XLEN"))

    async def create_group(self, stream: Value, group: Value, start: Value = "$") -> bool:
        return await self._do(_create_group(stream, group, start))

    async def read_group(
        self,
        stream: Value,
        group: Value,
        consumer: Value,
        count: int = 1,
        *,
        block: float | None = None,
        start: Value = ">",
    ) -> list[Entry]:
        return await self._do(_read_group(stream, group, consumer, count, block, start))

    async def ack(self, stream: Value, group: Value, ids: Sequence[Value]) -> int:
        return await self._do(_ack(stream, group, ids))

    async def claim(
        self, stream: Value, group: Value, consumer: Value, ids: Sequence[Value], *, min_idle: float = 0.0
    ) -> list[Entry]:
        return await self._do(_claim(stream, group, consumer, min_idle, ids))

    async def autoclaim(
        self, stream: Value, group: Value, consumer: Value, *, min_idle: float, start: Value = "0", count: int = 100
    ) -> tuple[bytes, list[Entry]]:
        return await self._do(_autoclaim(stream, group, consumer, min_idle, start, count))

    def close(self) -> None:
        """As ``Queues.close`` (it blocks for the final checkpoint: call it once the work is done)."""
        self._engine.close()

    async def aclose(self) -> None:
        """``close`` without blocking the caller's loop."""
        thread = threading.Thread(target=self._engine.close, name="respq-close")
        thread.start()
        while thread.is_alive():
            await _sleep(0.005)

    async def __aenter__(self) -> AsyncQueues:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


async def _sleep(seconds: float) -> None:
    if sniffio.current_async_library() == "trio":
        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def _open_engine(path: str | os.PathLike[str], appendfsync: str, loglevel: str, options: Mapping[str, str]) -> _Engine:
    path = os.fspath(path)
    try:
        return _Engine(path, appendfsync, options, _log(loglevel))
    except DataDirectoryLocked:
        raise
    except StartupError as error:
        raise OSError(error.message) from None


def open(  # respq.open, as shelve.open or dbm.open
    path: str | os.PathLike[str],
    *,
    appendfsync: str = "always",
    loglevel: str = "warning",
    options: Mapping[str, str] | None = None,
) -> Queues:
    """Opens (creating it if missing) the data directory ``path`` in this process, recovering what it holds.

    ``appendfsync`` is the server's policy: ``always`` (an acknowledged change survives a crash and a power loss),
    ``everysec`` (survives a crash of this process; a power loss may lose the last second), ``no``. ``options``:
    further server directives by name (``{"segment-size": "4mb"}``). Raises DataDirectoryLocked when another
    process (a respq server, another application) or another ``open`` holds the directory."""
    return Queues(_open_engine(path, appendfsync, loglevel, options or {}), os.fspath(path))


def open_async(
    path: str | os.PathLike[str],
    *,
    appendfsync: str = "always",
    loglevel: str = "warning",
    options: Mapping[str, str] | None = None,
) -> AsyncQueues:
    """``open`` for Trio and asyncio code: the same engine, with coroutine methods. Opening blocks (recovery
    reads the directory): call it before the loop starts, or from a worker thread."""
    return AsyncQueues(_open_engine(path, appendfsync, loglevel, options or {}), os.fspath(path))


def serve_in_background(queues: Queues | AsyncQueues, port: int = 0, host: str = LOOPBACK) -> int:
    """Serves open queues over RESP on ``host``:``port`` as well (``Queues.serve_in_background``); the port."""
    return queues.serve_in_background(port, host)
