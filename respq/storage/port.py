"""What a value type is to the engine, and what the engine offers a value type: the one boundary between them.

A value type (list, stream, ...) is a plug-in: a package under ``respq/types/`` holding its model, its commands and
its errors, registered in one table (``respq.types.REGISTRY``). The engine, the keyspace and ``respq check`` iterate
the registry and never name a concrete type. Storage imports no type: the registry is handed to ``Engine.open``.

Two halves:

* ``ValueType``: one object per type, stateless, describing it (name, on-disk type code, journal op numbers,
  segment record types, cold forms) and doing what the engine needs done for every value of the type (create,
  load from the manifest, check a manifest state offline, work before a checkpoint, recovery policy, statistics).
* ``StorePort``: the public part of the engine a value may use. Anything else of the engine is private to it.

Types may have settings (``default_settings``, ``parse_settings``): configuration their values depend on that
replay must know, journaled by the engine as opaque payloads when they change and kept in the manifest.

Per-value methods the engine calls (see ``Value``): ``replay``, ``dump`` (and ``capture``), ``files``, ``drop``, and
where the type declares them, ``settle`` (values marked with ``mark_settle``), ``write_note`` (values marked with
``mark_note``), ``freeze`` (types with cold forms) and ``recover_tail`` (types whose files are kept whole).
Per-value methods the generic commands call: ``encoding``, ``refcount`` (OBJECT), ``memory_usage`` (MEMORY
USAGE); and ``ValueType.copy`` (COPY, through ``Engine.copy``).
"""

from __future__ import annotations

import enum
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from respq.storage.catalog import CatalogEntry
from respq.storage.journal import ENGINE_OPS
from respq.storage.manifest import REC_MANIFEST

if TYPE_CHECKING:
    from array import array

    from respq.storage.fileio import FileIO
    from respq.storage.journal import Journal
    from respq.storage.segments import SegmentStore


class SegmentRecovery(enum.Enum):
    """What recovery does with a value's segment files past their checkpointed size."""

    CUT_TO_CHECKPOINT = "cut"  # replay re-appends what followed the checkpoint (lists: the journal holds the values)
    KEEP_WHOLE = "keep"  # entries were written once, there; replay reads them back (streams)


class Value(CatalogEntry, metaclass=ABCMeta):
    """A key's value in the catalog (and the catalog entry itself: ``type``, ``expire_ms``, ``qid``)."""

    __slots__ = ()
    vtype: ClassVar[ValueType]
    qid: int

    @abstractmethod
    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        """Re-applies one of the type's journal records; ``record_lsn`` is where it sits in the journal (inside a
        batch, where it would if its payload, where the batch holds it, were framed alone)."""

    @abstractmethod
    def dump(self) -> bytes:
        """The value's state for the manifest (read back by ``ValueType.load``)."""

    def capture(self) -> bytes | Callable[[], bytes]:
        """A checkpoint's capture of the state, on the loop thread: ``dump()``, or (where dumping costs more than
        keeping the contents as they are) a function the checkpoint's worker thread calls for those bytes, which
        the value's later writes must leave unchanged (copy on write)."""
        return self.dump()

    @abstractmethod
    def files(self) -> set[int]:
        """Segment files holding the value's data."""

    @abstractmethod
    def drop(self) -> None:
        """The key is gone: let go of every file (they die at the next checkpoint)."""

    # -- what the generic commands ask of any value

    @abstractmethod
    def encoding(self) -> bytes:
        """OBJECT ENCODING: the name Redis 7.0 gives its representation of the same contents (``quicklist``,
        ``stream``, ``embstr``/``int``/``raw``, ``listpack``/``hashtable``, ...)."""

    def refcount(self) -> int:
        """OBJECT REFCOUNT: what Redis 7.0 reports for the same contents (1 unless it shares the object)."""
        return 1

    @abstractmethod
    def memory_usage(self, samples: int = 5) -> int:
        """MEMORY USAGE of the value alone (the command adds the key's share): the bytes Redis 7.0 would use for
        the same contents, estimated as Redis does from the first ``samples`` nested parts (0: all of them).
        Types whose size needs no sampling ignore ``samples``."""


REWRITE_ITEMS_PER_COMMAND = 64  # Redis's AOF_REWRITE_ITEMS_PER_CMD: elements per command a rewrite writes


def rewrite_batches(head: list[bytes], items: Iterable[Sequence[bytes]]) -> Iterator[list[bytes]]:
    """``head`` (command and key) followed by the items' words, at most REWRITE_ITEMS_PER_COMMAND items a command."""
    command = list(head)
    count = 0
    for item in items:
        command.extend(item)
        count += 1
        if count == REWRITE_ITEMS_PER_COMMAND:
            yield command
            command, count = list(head), 0
    if count:
        yield command


class ValueType(metaclass=ABCMeta):
    """One value type's description and type-wide operations. Subclass per type; instantiate once, register."""

    name: str = ""  # what TYPE answers
    code: int = 0  # in CREATE records and manifest entries: part of the on-disk format, never reused
    ops: tuple[int, ...] = ()  # journal op numbers of its records; each record's payload starts with the queue id
    records: tuple[int, ...] = ()  # segment record types it writes
    cold_kinds: tuple[int, ...] = ()  # first bytes (low 7 bits) of its cold entries, if it has them
    segment_recovery = SegmentRecovery.CUT_TO_CHECKPOINT
    deletes_when_empty = False  # Redis deletes the key with its last element (lists); a stream may stay empty
    # Types whose values depend on settings (configuration the journal must replay, e.g. where a stream's listpack
    # nodes end): the payload in force when neither the manifest nor the journal says otherwise; None: no settings.
    default_settings: bytes | None = None

    @abstractmethod
    def create(self, port: StorePort, qid: int) -> Value:
        """A new empty value under queue id ``qid``."""

    @abstractmethod
    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> Value:
        """A value from its manifest state (``Value.dump``)."""

    @abstractmethod
    def copy(self, port: StorePort, value: Value, qid: int) -> Value:
        """COPY: a new value with queue id ``qid`` holding the same contents as ``value`` (of this type), every
        write journaled as records of ``qid`` so that replaying them after the CREATE of ``qid`` rebuilds it.
        Called by ``Engine.copy`` inside an atomic block, which journals that CREATE and places the value; on
        failure, drop what was made and raise (the engine discards the records)."""

    def load_cold(self, port: StorePort, qid: int, expire_ms: int | None, state: bytes) -> bytes | None:
        """A cold entry for a value loaded from the manifest, or None to load it as an object."""
        return None

    def parse_settings(self, payload: bytes) -> Any:
        """Types with settings: what values read from ``StorePort.settings[code]`` for a settings payload (from
        ``Engine.set_type_settings``, the manifest or a replayed record). Raises ValueError if malformed."""
        raise TypeError(f"{self.name} declares no settings")  # TypeRegistry refuses such a type

    # -- cold entries: a value nobody uses kept as bytes in the catalog (types with ``cold_kinds``)

    def thaw(self, port: StorePort, cold: bytes) -> Value:
        raise TypeError(f"{self.name} declares no cold forms")  # TypeRegistry refuses such a type

    def cold_expire(self, cold: bytes) -> int | None:
        raise TypeError(f"{self.name} declares no cold forms")  # TypeRegistry refuses such a type

    def cold_state(self, cold: bytes) -> tuple[int, bytes]:
        """(queue id, manifest state) of a cold entry, for the manifest without thawing it."""
        raise TypeError(f"{self.name} declares no cold forms")  # TypeRegistry refuses such a type

    def cold_needs_settle(self, cold: bytes) -> bool:
        """The cold entry holds data that lives in the journal alone (settled before a checkpoint)."""
        return False

    # -- replication

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        """The commands (argument lists, in Redis's own words) that rebuild ``value`` under a missing ``key``, as
        Redis's AOF rewrite writes the type: what a full sync sends a replica. The expiry is the caller's to add."""
        raise TypeError(f"{self.name} cannot be written as commands")

    # -- checkpoints and recovery

    def before_checkpoint(self, port: StorePort) -> None:
        """Type-wide work at the start of a checkpoint, before values are settled (none by default)."""
        return

    def precheck(self, port: StorePort, op: int, payload: bytes) -> None:
        """Recovery, for each record of a batch before any is applied: raise TornReference if applying it would
        find its data torn (a batch is all or nothing). Nothing to check by default."""
        return

    # -- offline check (respq check)

    def spans(self, state: bytes) -> Iterator[tuple[str, int, int, int, int, bool]]:
        """(label, file id, start, end, records, exact) of each span of segment records the state refers to: the
        span must hold exactly (``exact``) or at least ``records`` whole records."""
        return iter(())

    # -- statistics

    def stats(self, values: Iterable[Value]) -> dict[str, int]:
        """INFO-style figures over every value of the type."""
        return {}


# Fixed parts of the format that no type may take.
RESERVED_CODES = frozenset({0})
RESERVED_RECORDS = ENGINE_OPS | {REC_MANIFEST}  # the engine's own journal ops and the manifest record


class TypeRegistry:
    """The registered value types, with every number they own checked for collisions when it is built."""

    def __init__(self, types: Sequence[ValueType]) -> None:
        self.types = tuple(types)
        self.by_name: dict[str, ValueType] = {}
        self.by_code: dict[int, ValueType] = {}
        self.by_op: dict[int, ValueType] = {}
        self.by_cold_kind: dict[int, ValueType] = {}
        record_types: dict[int, ValueType] = {}  # journal ops and segment records share the record type byte
        for vtype in self.types:
            _claim(self.by_name, vtype.name, vtype, "type name", set())
            _claim(self.by_code, vtype.code, vtype, "type code", RESERVED_CODES)
            for op in vtype.ops:
                _claim(record_types, op, vtype, "record type", RESERVED_RECORDS)
                self.by_op[op] = vtype
            for record in vtype.records:
                _claim(record_types, record, vtype, "record type", RESERVED_RECORDS)
            for kind in vtype.cold_kinds:
                if not 0 < kind < 0x80:
                    raise ValueError(f"{vtype.name}: cold kind {kind} must be 1-127")
                _claim(self.by_cold_kind, kind, vtype, "cold kind", set())
            if vtype.cold_kinds:
                _require(vtype, ("thaw", "cold_expire", "cold_state"), "cold kinds")
            if vtype.default_settings is not None:
                _require(vtype, ("parse_settings",), "settings")
        self.with_cold = tuple(t for t in self.types if t.cold_kinds)

    def __iter__(self) -> Iterator[ValueType]:
        return iter(self.types)

    def __getitem__(self, name: str) -> ValueType:
        return self.by_name[name]

    def of_cold(self, cold: bytes) -> ValueType:
        return self.by_cold_kind[cold[0] & 0x7F]


def _require(vtype: ValueType, methods: tuple[str, ...], declared: str) -> None:
    """A type that declares an optional capability must bring the methods the engine calls for it."""
    for name in methods:
        if getattr(type(vtype), name) is getattr(ValueType, name):
            raise ValueError(f"{vtype.name}: declares {declared} but does not define {name}")


def _claim(table: dict[Any, ValueType], number: Any, vtype: ValueType, what: str, reserved: Iterable[Any]) -> None:
    if number in reserved:
        raise ValueError(f"{vtype.name}: {what} {number} is reserved")
    if number in table:
        raise ValueError(f"{vtype.name}: {what} {number} is already {table[number].name}'s")
    table[number] = vtype


class StorePort(Protocol):
    """The engine as a value sees it. Rules: ``before_write`` before any change (it may refuse); then change, then
    journal with ``log`` (a no-op during replay); ``log_at``/``log_many_at`` only outside atomic blocks and replay."""

    # False for a store held in memory (storage/memory.py): there is no journal (``log*`` keep nothing, so a type
    # may skip building records) and no file to read by path, so a type writes values to its segments at once;
    # ``io`` and ``journal`` are then absent.
    on_disk: bool
    io: FileIO
    store: SegmentStore  # the segment files
    journal: Journal  # read values that live in the journal alone (``journal.read``/``read_many``)
    catalog: list[dict[bytes, Any]]  # per database: key -> Value or cold bytes (types replace their own entries)
    maxdisk: int
    atomic_depth: int  # > 0 inside ``atomic()``
    replaying: bool
    journaled_values: int  # values pushed into the journal alone (paces settling)
    outside_bytes: int  # bytes written outside the journal since the last checkpoint began (recovery reads them)
    settings: dict[int, Any]  # type code -> the type's settings in force (``ValueType.parse_settings``)
    settings_unnoted: set[int]  # type codes whose settings in force may not be journaled yet: ``note_settings``

    def before_write(self, growth: int) -> None: ...
    def log(self, op: int, payload: bytes) -> None: ...
    def log_many(self, op: int, payloads: list[bytes]) -> None: ...
    def log_at(self, op: int, payload: bytes) -> int: ...
    def log_many_at(self, op: int, payloads: list[bytes]) -> int: ...
    def log_note(self, op: int, payload: bytes) -> None: ...
    def log_staged(self, op: int, payload: bytes, positions: array[int]) -> int: ...
    def note_settings(self, vtype: ValueType) -> None: ...
    def atomic(self) -> AbstractContextManager[None]: ...
    def begin_atomic(self) -> None: ...
    def end_atomic(self) -> None: ...
    def journal_clean(self) -> bool: ...
    def mark_settle(self, value: Value) -> None: ...
    def unmark_settle(self, value: Value) -> None: ...
    def mark_used(self, qid: int) -> None: ...
    def unmark_used(self, qid: int) -> None: ...
    def mark_note(self, value: Value) -> None: ...
    def mark_changed(self, value: Value) -> None: ...
    def notes_pending(self) -> dict[int, Value]: ...
    def write_notes(self) -> None: ...
    def appended_outside(self, nbytes: int) -> None: ...
    def inline_changed(self, delta: int) -> None: ...
    def pin_files(self, segments: list[int], journals: list[int]) -> None: ...
    def unpin_files(self, segments: list[int], journals: list[int]) -> None: ...
    def thaw_where(self, vtype: ValueType, test: Callable[[bytes], bool]) -> None: ...
    def create(self, db: int, key: bytes, type_name: str) -> Value: ...
    def get(self, db: int, key: bytes) -> Value | None: ...
    def appended_records(self, qid: int, fid: int, offset: int, length: int, count: int) -> list[bytes]: ...
    def tail_records(self, qid: int, fid: int, start: int, size: int) -> list[bytes]: ...
    def replaying_whole_entries(self) -> None: ...


__all__ = [
    "RESERVED_CODES",
    "RESERVED_RECORDS",
    "SegmentRecovery",
    "StorePort",
    "TypeRegistry",
    "Value",
    "ValueType",
]


class KeyListener(Protocol):
    """Told of every key that appears in or leaves a database of the store, whatever the cause (a command, expiry,
    RENAME, MOVE, COPY, FLUSHDB, SWAPDB): set as the engine's ``key_listener`` once it is open (recovery does not
    call it; the listener reads the keys once when set). Storage gives keys only: what they mean is the caller's."""

    def key_added(self, db: int, key: bytes) -> None: ...
    def key_removed(self, db: int, key: bytes) -> None: ...
    def db_replaced(self, db: int) -> None:
        """Database ``db`` holds a new set of keys (FLUSHDB, SWAPDB): read them again."""
