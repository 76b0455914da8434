"""A list stored as a sequence of chunks: contiguous runs of records in the queue's segment files, and runs of
values pushed since the last checkpoint that so far live only in the journal.

A push is written once, to the journal; its values are read back from there (a ``JournalRun`` keeps their
positions, 12 bytes per value). Values still in the list when a checkpoint begins are copied into the queue's
segment files (``settle``), so a message consumed before the next checkpoint is written to disk exactly once, and
the manifest only ever describes segment chunks. Middle operations settle the list first.

List order vs file order: a forward chunk holds its elements in file order (right pushes append them), a backward
chunk in reverse file order (left pushes append them, so the newest head sits at the file's end). Head and tail
operations touch only the two edge chunks, reading one record from the appropriate end; middle operations split
chunks (LSET, LINSERT, LTRIM) or rewrite the list into new chunks (LREM, compaction), O(n) but never holding more
than a batch of values in memory.
"""

from __future__ import annotations

import bisect
import enum
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from respq.storage import framing, journal
from respq.storage.errors import CorruptionError, StorageError, StorageReadError
from respq.storage.fileio import FileIO
from respq.storage.port import StorePort, Value, ValueType, rewrite_batches
from respq.storage.segments import READ_AHEAD, SegmentStore
from respq.types import memory

# Journal record types of lists. Values are part of the on-disk format: never renumber. Each payload starts with
# the list's queue id.
OP_PUSH = 20
OP_POP = 21
OP_SET = 22
OP_INSERT = 23
OP_REMOVE = 24
OP_TRIM = 25

class Side(enum.IntEnum):
    LEFT = 0
    RIGHT = 1


LEFT = Side.LEFT
RIGHT = Side.RIGHT

CHUNK = struct.Struct("<QQQQB")  # file id, start, end, count, forward (states of format 3 and before)
CHUNK_TIMED = struct.Struct("<QQQQBq")  # the same, then the push time of its oldest value (unix ms; 0: unknown)
STATE_HEAD = struct.Struct("<QQI")  # left active file, right active file, chunk count (| CHUNKS_TIMED)
CHUNKS_TIMED = 1 << 31  # format 4: the chunks are CHUNK_TIMED
# A segment chunk holds values pushed within this long of its oldest (a push later starts a chunk of its own, and a
# settled journal run is cut there), so a list's age, read from the chunk at either end, is right to within it.
CHUNK_SPAN_MS = 5_000
PUSH_HEAD = struct.Struct("<QB")
POP_OP = struct.Struct("<QBI")
SET_HEAD = struct.Struct("<Qq")
INSERT_HEAD = struct.Struct("<QBI")
REMOVE_HEAD = struct.Struct("<Qq")
TRIM_OP = struct.Struct("<Qqq")

PUSHED_VALUES_AT = framing.HEAD_SIZE + PUSH_HEAD.size + journal.VALUE_LEN.size  # an OP_PUSH record's first value
REWRITE_BATCH = 256  # values carried from old chunks to new ones per write during a rewrite
# A list this long is a backlog: values pushed now will still be queued at the next checkpoint, so they go to their
# segment at once (and into the journal) instead of being copied out of the journal later.
BACKLOG_VALUES = 100_000
COMPACT_CHUNKS = 512  # a list split into more chunks than this is rewritten after a middle operation
# A run of values settled at a checkpoint this small (framed) goes to the shared file, not to a file of the list's.
SHARED_SETTLE_BYTES = 64 << 10

# A list unused since the last checkpoint (or new and holding one pushed value) is kept in the engine's catalog as a
# cold entry, these bytes, instead of its objects: ~60-110 bytes against ~500. Engine.get turns it back into a
# ListLog on first use.
COLD_HEAD = struct.Struct("<BQq")  # kind (| COLD_EXPIRES), queue id, expiry (unix ms)
COLD_VALUE = struct.Struct("<BQI")  # after a COLD_IN_JOURNAL head: forward, the value's journal position, length
COLD_IN_JOURNAL = 1  # one value, living in the journal alone
COLD_IN_SEGMENTS = 2  # values in segment files: the head is followed by the list's manifest state (``dump``)
COLD_EXPIRES = 0x80

# Redis 7.0's quicklist, for MEMORY USAGE: object and header, node header, a node's listpack limit
# (list-max-listpack-size -2), the per-value overhead it assumes, values that get a node of their own.
QUICKLIST = memory.ROBJ + 40
QUICKLIST_NODE = 40
QUICKLIST_NODE_BYTES = 8192
QUICKLIST_ENTRY_ESTIMATE = 8
PLAIN_VALUE = 1 << 30
EXACT_MEMORY_BYTES = 1 << 20  # MEMORY USAGE reads a list this long whole, to count its nodes as Redis does


def cold_kind(cold: bytes) -> int:
    return cold[0] & ~COLD_EXPIRES


def cold_expire(cold: bytes) -> int | None:
    kind, _, expire = COLD_HEAD.unpack_from(cold)
    return expire if kind & COLD_EXPIRES else None


def cold_files(cold: bytes) -> set[int]:
    """The segment files a COLD_IN_SEGMENTS entry holds chunks of."""
    return {fid for fid, *_ in _packed_chunks(cold, COLD_HEAD.size)}


def cold_summary(cold: bytes, journal_: journal.Journal) -> tuple[int, int, int]:
    """(values, bytes on disk, ``ListLog.oldest_push_ms``) of the list a cold entry stands for, in one pass and
    without making it an object again (metrics)."""
    if cold_kind(cold) == COLD_IN_JOURNAL:
        _, position, length = COLD_VALUE.unpack_from(cold, COLD_HEAD.size)
        return 1, length + framing.OVERHEAD, journal_.push_ms(position)
    values = size = 0
    oldest: int | None = None
    for _, start, end, count, _, ms in _packed_chunks(cold, COLD_HEAD.size):
        values += count
        size += end - start
        if oldest is None or ms < oldest:
            oldest = ms
    return values, size, oldest or 0


def cold_push_ms(cold: bytes, journal_: journal.Journal) -> int:
    """``ListLog.oldest_push_ms`` of the list a cold entry stands for, without making it an object."""
    return cold_summary(cold, journal_)[2]


def _cold_head(kind: int, qid: int, expire_ms: int | None) -> bytes:
    return COLD_HEAD.pack(kind | (COLD_EXPIRES if expire_ms is not None else 0), qid, expire_ms or 0)


def _packed_chunks(state: bytes | memoryview, offset: int) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(file id, start, end, count, forward, push ms) of each chunk of the state ``ListLog.dump`` wrote at
    ``offset``; a state of format 3 or before has no times (0: unknown)."""
    count = STATE_HEAD.unpack_from(state, offset)[2]
    start = offset + STATE_HEAD.size
    if count & CHUNKS_TIMED:
        count &= ~CHUNKS_TIMED
        view = memoryview(state)[start : start + count * CHUNK_TIMED.size]
        return CHUNK_TIMED.iter_unpack(view)  # type: ignore[return-value]
    untimed = CHUNK.iter_unpack(memoryview(state)[start : start + count * CHUNK.size])
    return ((*chunk, 0) for chunk in untimed)  # type: ignore[return-value]


def _shared_held(store: SegmentStore, spans: Iterable[tuple[int, int, int]]) -> dict[int, int]:
    """Bytes held in each shared file by the chunks ``spans`` (file id, start, end) describe."""
    held: dict[int, int] = {}
    for fid, start, end in spans:
        if store.is_shared(fid):
            held[fid] = held.get(fid, 0) + end - start
    return held


def push_growth(values: Sequence[bytes]) -> int:
    """Disk bytes a push of ``values`` may take: written twice if still here at the next checkpoint."""
    return push_growth_bytes(sum(map(len, values)), len(values))


def push_growth_bytes(total: int, count: int) -> int:
    """``push_growth`` of ``count`` values of ``total`` bytes."""
    return total * 2 + framing.OVERHEAD * 2 * count


class Chunk:
    __slots__ = ("count", "end", "fid", "forward", "ms", "start")

    def __init__(self, fid: int, start: int, end: int, count: int, forward: bool, ms: int) -> None:
        self.fid = fid
        self.start = start
        self.end = end
        self.count = count
        self.forward = forward
        self.ms = ms  # push time of its oldest value, unix ms (0: unknown, written before format 4)

    def __repr__(self) -> str:
        return f"Chunk({self.fid}, {self.start}, {self.end}, {self.count}, {'fwd' if self.forward else 'bwd'})"


class JournalRun:
    """Values of consecutive pushes at one end that live only in the journal: their LSNs and lengths.

    Forward runs (right pushes) hold values in list order, backward runs (left pushes) in reverse list order, like
    segment chunks. Values leave from either end: ``lo`` skips the consumed front of the arrays.
    """

    __slots__ = ("forward", "lengths", "lo", "positions")
    fid = 0  # in no segment file

    def __init__(self, forward: bool) -> None:
        self.forward = forward
        self.positions = array("Q")
        self.lengths = array("I")
        self.lo = 0

    @property
    def count(self) -> int:
        return len(self.positions) - self.lo

    def __repr__(self) -> str:
        return f"JournalRun({self.count}, {'fwd' if self.forward else 'bwd'})"


class ListLog(Value):
    """One list, and its key's catalog entry. Mutations are journaled by the engine that owns it; reads come from
    the segment files."""

    __slots__ = ("_chunks", "_engine", "_left_fid", "_length", "_rewriting", "_right_fid", "qid", "store")
    type = "list"

    def __init__(self, engine: StorePort, qid: int) -> None:
        super().__init__()
        self._engine = engine
        self.store: SegmentStore = engine.store
        self.qid = qid
        self._chunks: list[Chunk | JournalRun] = []
        self._length = 0
        self._left_fid = 0  # 0: no active file yet
        self._right_fid = 0
        self._rewriting: list[Chunk | JournalRun] | None = None

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"ListLog(qid={self.qid}, len={self._length}, chunks={self._chunks})"

    # -- head and tail

    def push(self, side: Side, values: Sequence[bytes]) -> int:
        """Adds values one by one at ``side`` (so LPUSH a b c leaves c first); returns the new length."""
        if not values:
            return self._length
        engine = self._engine
        engine.before_write(push_growth(values) if engine.maxdisk else 0)  # only worth adding up under a limit
        if not engine.on_disk:  # a store without a journal: the segments hold the values, and no record is kept
            self._push(side, values)
            return self._length
        payload = PUSH_HEAD.pack(self.qid, side) + journal.encode_values(values)
        if self._length >= BACKLOG_VALUES:
            # Behind a backlog the values would be copied to the segment anyway: written there now (recovery replays
            # the journal record, and cuts segment bytes written after the checkpoint).
            self._push(side, values)
            engine.log(OP_PUSH, payload)
        elif engine.atomic_depth:
            # In a block the record's position is known only once the block ends: the values are read at a
            # provisional one until then, which the engine moves in the run's array (LMOVE, scripts, MULTI).
            forward = side == RIGHT
            positions = self._journal_run(forward).positions
            self._push_journaled(forward, map(len, values), engine.log_staged(OP_PUSH, payload, positions))
        else:
            self._push_journaled(side == RIGHT, map(len, values), engine.log_at(OP_PUSH, payload))
        return self._length

    def _push_journaled(self, forward: bool, lengths: Iterable[int], record_lsn: int) -> None:
        """Adds the values of the OP_PUSH record at ``record_lsn`` as journal-resident values."""
        added = _place(self._journal_run(forward), lengths, record_lsn + PUSHED_VALUES_AT)
        self._length += added
        self._engine.journaled_values += added

    def _journal_run(self, forward: bool) -> JournalRun:
        """The journal run at the end ``forward`` names, started if that end holds anything else."""
        chunks = self._chunks
        if chunks:
            edge = chunks[-1] if forward else chunks[0]
            if type(edge) is JournalRun and edge.forward == forward:
                return edge
        edge = JournalRun(forward)
        if not chunks:
            self._chunks = [edge]  # sized exactly: an idle queue often never holds a second chunk
        elif forward:
            chunks.append(edge)
        else:
            chunks.insert(0, edge)
        engine = self._engine
        engine.mark_settle(self)
        engine.mark_used(self.qid)
        return edge

    def pop(self, side: Side, count: int) -> list[bytes]:
        """Removes up to ``count`` values from ``side``. An emptied list stays in the catalog: the caller deletes it."""
        if count <= 0 or not self._length:
            return []
        self._engine.before_write(0)
        values = self._pop(side, count, want_values=True)
        self._engine.log(OP_POP, POP_OP.pack(self.qid, side, len(values)))
        return values  # type: ignore[return-value]

    def _push(self, side: Side, values: Sequence[bytes], ms: int = 0) -> None:
        """Writes ``values`` to segment records at ``side``, pushed at ``ms`` (0: now). An edge chunk is extended
        only while it holds values pushed less than CHUNK_SPAN_MS before these."""
        store = self.store
        forward = side == RIGHT
        chunks = self._chunks
        fid = self._right_fid if forward else self._left_fid
        ms = ms or journal.wall_ms()
        if fid and len(values) == 1:
            # One value into an active file with room, next to its edge chunk: the usual push, with nothing to undo
            # if the append fails (it changes nothing then).
            edge = (chunks[-1] if forward else chunks[0]) if chunks else None
            size = store.size(fid)
            if (
                type(edge) is Chunk
                and edge.fid == fid
                and edge.forward == forward
                and edge.end == size
                and size + len(values[0]) + framing.OVERHEAD <= store.segment_size
                and 0 <= ms - edge.ms < CHUNK_SPAN_MS
            ):
                data = framing.frame(framing.REC_LIST_VALUE, values[0])
                store.append(fid, data)
                edge.end += len(data)
                edge.count += 1
                self._length += 1
                return
        # Enough to undo a push that fails half-way (disk full after a segment roll): O(1), nothing copied.
        saved_chunks = len(chunks)
        edge = (chunks[-1] if forward else chunks[0]) if chunks else None
        saved_edge = (edge.end, edge.count) if type(edge) is Chunk else None  # a journal run is never extended
        saved_length = self._length
        saved_fid = self._right_fid if forward else self._left_fid
        created: list[int] = []
        ends = framing.record_ends(values)
        try:
            index = 0
            while index < len(values):
                fid = self._right_fid if forward else self._left_fid
                if fid == 0 or store.size(fid) >= store.segment_size:
                    fid = store.create(self.qid)
                    created.append(fid)
                    self._set_active(side, fid)
                room = store.segment_size - store.size(fid)
                batch_end = framing.fitting(ends, index, room)
                data = framing.frame_values(framing.REC_LIST_VALUE, values[index:batch_end])
                offset = store.append(fid, data)
                added = batch_end - index
                edge = (chunks[-1] if forward else chunks[0]) if chunks else None
                if (
                    edge is not None
                    and edge.fid == fid
                    and edge.forward == forward
                    and edge.end == offset
                    and 0 <= ms - edge.ms < CHUNK_SPAN_MS  # type: ignore[union-attr]
                ):
                    edge.end += len(data)
                    edge.count += added
                elif forward:
                    chunks.append(Chunk(fid, offset, offset + len(data), added, True, max(ms, 0)))
                else:
                    chunks.insert(0, Chunk(fid, offset, offset + len(data), added, False, max(ms, 0)))
                self._length += added
                index = batch_end
        except BaseException:
            if forward:
                del chunks[saved_chunks:]
            else:
                del chunks[: len(chunks) - saved_chunks]
            if saved_edge is not None:
                edge = chunks[-1] if forward else chunks[0]
                edge.end, edge.count = saved_edge
            self._length = saved_length
            if created:
                # Restore the previous active file first so the new ones are seen as unreferenced.
                if forward:
                    self._right_fid = saved_fid
                else:
                    self._left_fid = saved_fid
                for fid in created:
                    self._release(fid)
            raise

    def _set_active(self, side: Side, fid: int) -> None:
        if side == RIGHT:
            old, self._right_fid = self._right_fid, fid
        else:
            old, self._left_fid = self._left_fid, fid
        if old:
            self._release(old)

    def _release(self, fid: int) -> None:
        """Marks ``fid`` dead if nothing in this list refers to it any more."""
        if fid in (self._left_fid, self._right_fid) or fid not in self.store.files:
            return
        for chunk in self._chunks:
            if chunk.fid == fid:
                return
        if self._rewriting is not None and any(chunk.fid == fid for chunk in self._rewriting):
            return
        if self.store.is_shared(fid):
            self.store.unref_shared(fid, self.qid)
        else:
            self.store.kill(fid)

    def _pop(self, side: Side, count: int, want_values: bool) -> list[bytes | None]:
        """Takes up to ``count`` values from ``side``. Everything is read before anything changes: a read error or a
        corrupt record met half-way raises with the list as it was (none of its values consumed unjournaled)."""
        store = self.store
        chunks = self._chunks
        out: list[bytes | None] = []
        from_left = side == LEFT
        taken: list[tuple[Chunk | JournalRun, int, int]] = []  # (chunk, values taken, its new start or end)
        for chunk in chunks if from_left else reversed(chunks):
            if count <= 0:
                break
            n = min(count, chunk.count)
            if type(chunk) is JournalRun:
                self._read_run_end(chunk, from_left == chunk.forward, n, out, want_values)
                taken.append((chunk, n, 0))
            else:
                # Popping the chunk's file start reads forward (sequential, read-ahead); its file end, backward (a
                # stack, or RPOP of RPUSHes). Either way a block's records are checked in one call.
                forward = from_left == chunk.forward
                read_many = store.read_many_forward if forward else store.read_many_backward
                position, bound, left = (chunk.start, chunk.end, n) if forward else (chunk.end, chunk.start, n)
                while left:
                    values, position = read_many(chunk.fid, position, bound, left)
                    out += values if want_values else [None] * len(values)
                    left -= len(values)
                taken.append((chunk, n, position))
            count -= n
        emptied = []
        for chunk, n, position in taken:
            if type(chunk) is JournalRun:
                self._drop_run_end(chunk, from_left == chunk.forward, n)
            else:
                if from_left == chunk.forward:
                    chunk.start = position
                else:
                    chunk.end = position
                chunk.count -= n
            if not chunk.count:
                emptied.append(chunk)
        if emptied:
            if from_left:
                del chunks[: len(emptied)]
            else:
                del chunks[len(chunks) - len(emptied) :]
            for chunk in emptied:
                if type(chunk) is Chunk:
                    self._release(chunk.fid)
        self._length -= len(out)
        return out

    def _read_run_end(self, run: JournalRun, from_front: bool, count: int, out: list[bytes | None], want: bool) -> None:
        """Appends the ``count`` values at the front (lowest array index) or back of ``run``, in popping order."""
        if not want:
            out += [None] * count
            return
        positions, lengths, journal_ = run.positions, run.lengths, self._engine.journal
        if count == 1:  # a lone pop: no slices to build
            index = run.lo if from_front else len(positions) - 1
            out.append(journal_.read(positions[index], lengths[index], not from_front))
        elif from_front:
            out += journal_.read_many(positions[run.lo : run.lo + count], lengths[run.lo : run.lo + count])
        else:  # positions ascend with the array index: the back is read towards lower LSNs
            back = len(positions) - count
            out += journal_.read_many(positions[back:][::-1], lengths[back:][::-1], descending=True)

    @staticmethod
    def _drop_run_end(run: JournalRun, from_front: bool, count: int) -> None:
        positions, lengths = run.positions, run.lengths
        if from_front:
            run.lo += count
            if run.lo > 4096 and run.lo * 2 > len(positions):  # give the consumed front's memory back
                del positions[: run.lo], lengths[: run.lo]
                run.lo = 0
        else:
            del positions[len(positions) - count :], lengths[len(lengths) - count :]

    # -- reads

    def index(self, i: int) -> bytes | None:
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            return None
        return next(self._iter_from(i, True))

    def range(self, start: int, stop: int) -> Iterator[bytes]:
        """LRANGE: inclusive stop, negative indices from the tail. Consume it before the next mutation."""
        first, last = self.range_bounds(start, stop)
        if first > last:
            return iter(())
        return _take(self._iter_from(first, True), last - first + 1)

    def __iter__(self) -> Iterator[bytes]:
        return self._iter_from(0, True) if self._length else iter(())

    def range_bounds(self, start: int, stop: int) -> tuple[int, int]:
        """LRANGE's index rules: the first and last list index of the range, or (0, -1) when it is empty."""
        length = self._length
        if start < 0:
            start = max(0, start + length)
        if stop < 0:
            stop += length
        stop = min(stop, length - 1)
        if start > stop or start >= length:
            return 0, -1
        return start, stop

    def snapshot(self, start: int, stop: int) -> ListSnapshot:
        """The values of ``range(start, stop)`` as they are now, readable later however the list changes.

        O(chunks in the range) now, plus a copy of the positions of journal-resident values in it (12 bytes each)
        and of values still in the journal's unwritten buffer; every other value is read only when iterated.
        """
        first, last = self.range_bounds(start, stop)
        remaining = last - first + 1
        pieces: list[_SegmentPiece | _JournalPiece | list[bytes]] = []
        if remaining:
            chunk_index, local = self._locate(first)
            store = self.store
            while remaining:
                chunk = self._chunks[chunk_index]
                take = min(chunk.count - local, remaining)
                if type(chunk) is JournalRun:
                    pieces += self._snapshot_run(chunk, local, take)
                elif not self._engine.on_disk:  # segments with no file to read later: copy the values now
                    pieces.append(list(_take(self._iter_from(last - remaining + 1, True), take)))
                else:
                    fid = chunk.fid
                    try:
                        store.write_pending(fid)  # the snapshot reads the file itself
                    except StorageError:  # the disk is full (or failing): copy these values while they are readable
                        pieces.append(list(_take(self._iter_from(last - remaining + 1, True), take)))
                    else:
                        path = store.path(store.files[fid][0], fid)
                        bounds = (chunk.start, chunk.end, chunk.count)
                        pieces.append(_SegmentPiece(fid, path, *bounds, chunk.forward, local, take))
                remaining -= take
                chunk_index += 1
                local = 0
        return ListSnapshot(self._engine, last - first + 1, pieces)

    def _snapshot_run(self, run: JournalRun, local: int, take: int) -> list[_JournalPiece | list[bytes]]:
        """``take`` values of ``run`` from list position ``local``: positions of those already written to the
        journal file, and copies of those still in its buffer (at most one loop pass of pushes)."""
        low = run.lo + local if run.forward else len(run.positions) - local - take
        # Array order is push order, so positions ascend and the unwritten ones are a suffix.
        positions, lengths = run.positions[low : low + take], run.lengths[low : low + take]
        journal_ = self._engine.journal
        written = bisect.bisect_left(positions, journal_.flushed_lsn)
        pieces: list[_JournalPiece | list[bytes]] = []
        # Values sit in the current journal file, or (until the first checkpoint after a crash) in files replayed
        # at start-up: one piece per file.
        for seq, start_lsn, end_lsn in journal_.readable_files():
            first = bisect.bisect_left(positions, start_lsn, 0, written)
            last = bisect.bisect_left(positions, end_lsn, 0, written)
            if first < last:
                in_file, in_file_lengths = positions[first:last], lengths[first:last]
                if not run.forward:  # list order is the reverse of push order
                    in_file.reverse()
                    in_file_lengths.reverse()
                pieces.append(
                    _JournalPiece(seq, journal_.path(seq), start_lsn, in_file, in_file_lengths, run.forward)
                )
        buffered = [journal_.read(positions[i], lengths[i]) for i in range(written, take)]
        if buffered:
            pieces.append(buffered[::-1] if not run.forward else buffered)
        return pieces if run.forward else pieces[::-1]

    def positions(self, value: bytes, rank: int = 1, count: int = 1, maxlen: int = 0) -> list[int]:
        """LPOS: indices of ``value``; a negative rank scans from the tail; count 0 = all; maxlen 0 = no limit."""
        if not self._length or rank == 0:
            return []
        from_head = rank > 0
        skip = abs(rank) - 1
        found: list[int] = []
        scanned = 0
        start = 0 if from_head else self._length - 1
        step = 1 if from_head else -1
        for offset, element in enumerate(self._iter_from(start, from_head)):
            if maxlen and scanned >= maxlen:
                break
            scanned += 1
            if element == value:
                if skip:
                    skip -= 1
                    continue
                found.append(start + step * offset)
                if count and len(found) >= count:
                    break
        return found

    def _iter_from(self, i: int, list_forward: bool) -> Iterator[bytes]:
        """Values from list index ``i`` towards the tail (or towards the head if not ``list_forward``)."""
        chunk_index, local = self._locate(i)
        chunks = self._chunks
        step = 1 if list_forward else -1
        while 0 <= chunk_index < len(chunks):
            chunk = chunks[chunk_index]
            yield from self._iter_chunk(chunk, local, list_forward)
            chunk_index += step
            if 0 <= chunk_index < len(chunks):
                local = 0 if list_forward else chunks[chunk_index].count - 1

    def _iter_chunks(self, chunks: list[Chunk | JournalRun]) -> Iterator[bytes]:
        """Every value of ``chunks`` in list order (the list object is bound now, not when iteration starts)."""
        for chunk in chunks:
            yield from self._iter_chunk(chunk, 0, True)

    def _iter_chunk(self, chunk: Chunk | JournalRun, local: int, list_forward: bool) -> Iterator[bytes]:
        if type(chunk) is JournalRun:
            yield from self._iter_run(chunk, local, list_forward)
            return
        store, fid = self.store, chunk.fid
        file_index = local if chunk.forward else chunk.count - 1 - local
        record_start, record_end = self._record_bounds(chunk, file_index)
        if chunk.forward == list_forward:
            offset, remaining = record_start, chunk.count - file_index
            while remaining:
                value, offset = store.read_forward(fid, offset, chunk.end)
                remaining -= 1
                yield value  # type: ignore[misc]
        else:
            offset, remaining = record_end, file_index + 1
            while remaining:
                value, offset = store.read_backward(fid, offset, chunk.start)
                remaining -= 1
                yield value  # type: ignore[misc]

    def _iter_run(self, run: JournalRun, local: int, list_forward: bool) -> Iterator[bytes]:
        index = run.lo + local if run.forward else len(run.positions) - 1 - local
        if run.forward == list_forward:
            return self._read_run(run, range(index, len(run.positions)))
        return self._read_run(run, range(index, run.lo - 1, -1))

    def _read_run(self, run: JournalRun, indices: range) -> Iterator[bytes]:
        read, positions, lengths = self._engine.journal.read, run.positions, run.lengths
        descending = indices.step < 0
        for index in indices:
            yield read(positions[index], lengths[index], descending)

    def _locate(self, i: int) -> tuple[int, int]:
        """(chunk index, index within the chunk in list order) of list index ``i``; walks from the nearer end."""
        chunks = self._chunks
        if i < self._length // 2:
            for chunk_index, chunk in enumerate(chunks):
                if i < chunk.count:
                    return chunk_index, i
                i -= chunk.count
        else:
            from_tail = self._length - 1 - i
            for chunk_index in range(len(chunks) - 1, -1, -1):
                count = chunks[chunk_index].count
                if from_tail < count:
                    return chunk_index, count - 1 - from_tail
                from_tail -= count
        raise IndexError(i)

    def _record_bounds(self, chunk: Chunk, file_index: int) -> tuple[int, int]:
        """File offsets of record ``file_index`` (in file order) of ``chunk``, skipping from the nearer end."""
        store, fid = self.store, chunk.fid
        if file_index <= chunk.count - 1 - file_index:
            offset = chunk.start
            for _ in range(file_index):
                _, offset = store.read_forward(fid, offset, chunk.end, False)
            _, end = store.read_forward(fid, offset, chunk.end, False)
            return offset, end
        end = chunk.end
        for _ in range(chunk.count - 1 - file_index):
            _, end = store.read_backward(fid, end, chunk.start, False)
        _, start = store.read_backward(fid, end, chunk.start, False)
        return start, end

    # -- middle operations

    def set(self, i: int, value: bytes) -> bool:
        """LSET: False if ``i`` is out of range."""
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            return False
        self._engine.before_write(len(value) * 2 + framing.OVERHEAD * 2)
        self._set(i, value)
        self._engine.log(OP_SET, SET_HEAD.pack(self.qid, i) + value)
        return True

    def _set(self, i: int, value: bytes) -> None:
        self._split_before(i + 1)
        at = self._split_before(i)
        replacement = self._write_detached(value)
        old = self._chunks[at]
        self._chunks[at] = replacement
        self._release(old.fid)
        self._maybe_compact()

    def insert(self, pivot: bytes, value: bytes, before: bool) -> int:
        """LINSERT: the new length, or -1 if ``pivot`` is not in the list."""
        found = self.positions(pivot)
        if not found:
            return -1
        self._engine.before_write(len(value) * 2 + len(pivot) + framing.OVERHEAD * 2)
        self._insert_at(found[0] if before else found[0] + 1, value)
        self._engine.log(OP_INSERT, INSERT_HEAD.pack(self.qid, before, len(pivot)) + pivot + value)
        return self._length

    def _insert_at(self, i: int, value: bytes) -> None:
        at = self._split_before(i)
        self._chunks.insert(at, self._write_detached(value))
        self._length += 1
        self._maybe_compact()

    def remove(self, count: int, value: bytes) -> int:
        """LREM: removes the first ``count`` matches (from the tail if negative; all if 0); returns how many."""
        matches = self.positions(value, 1 if count >= 0 else -1, abs(count))
        if not matches:
            return 0
        self._engine.before_write(len(value) + framing.OVERHEAD)
        self._remove(matches)
        self._engine.log(OP_REMOVE, REMOVE_HEAD.pack(self.qid, count) + value)
        return len(matches)

    def _remove(self, matches: list[int]) -> None:
        # Matches that are the list's first or last elements (RQ's LREM of the one job its intermediate list holds)
        # are popped: nothing is rewritten into new segment files. Replay decides the same way.
        count, low, high = len(matches), min(matches), max(matches)
        if high - low + 1 == count:  # positions are distinct: these are contiguous
            if low == 0:
                self._pop(LEFT, count, want_values=False)
                return
            if high == self._length - 1:
                self._pop(RIGHT, count, want_values=False)
                return
        # Matches all still in the journal (BullMQ's LREM of a finished job from its active list) leave their runs'
        # arrays: nothing is written either. Replay holds in journal runs whatever the live list did (and more: live
        # settling ahead of a checkpoint, pushes behind a backlog), so it writes no more than the live call did. (Its
        # files may still differ from the live run's: recovery reserves the ids stream records name.)
        chunks = self._chunks
        spots = [self._locate(i) for i in matches]
        if all(type(chunks[chunk_index]) is JournalRun for chunk_index, _ in spots):
            by_run: dict[int, list[int]] = {}
            for chunk_index, local in spots:
                run = chunks[chunk_index]
                index = run.lo + local if run.forward else len(run.positions) - 1 - local
                by_run.setdefault(chunk_index, []).append(index)
            for chunk_index, indices in by_run.items():
                run = chunks[chunk_index]
                for index in sorted(indices, reverse=True):  # the lower indices stay where they are
                    del run.positions[index], run.lengths[index]
            self._length -= len(matches)
            if any(not chunks[chunk_index].count for chunk_index in by_run):
                self._chunks = [chunk for chunk in chunks if chunk.count]
            return
        doomed = set(matches)
        self._rewrite(v for index, v in enumerate(self._iter_chunks(self._chunks)) if index not in doomed)

    def trim(self, start: int, stop: int) -> None:
        """LTRIM semantics. Trimming everything leaves an empty list: the caller deletes the key."""
        length = self._length
        if start < 0:
            start = max(0, start + length)
        if stop < 0:
            stop += length
        stop = min(stop, length - 1)
        if start > stop or start >= length:
            start, stop = length, length - 1  # remove all
        if start == 0 and stop == length - 1:
            return
        self._engine.before_write(0)
        self._trim(start, stop)
        self._engine.log(OP_TRIM, TRIM_OP.pack(self.qid, start, stop))

    def _trim(self, start: int, stop: int) -> None:
        dropped: list[Chunk] = []
        if stop + 1 < self._length:
            cut = self._split_before(stop + 1)
            dropped += self._chunks[cut:]
            del self._chunks[cut:]
            self._length = stop + 1
        if start > 0:
            cut = self._split_before(start)  # everything when start is past the (new) end
            dropped += self._chunks[:cut]
            del self._chunks[:cut]
            self._length = max(0, self._length - start)
        for fid in {chunk.fid for chunk in dropped}:
            self._release(fid)

    def _split_before(self, i: int) -> int:
        """Makes list index ``i`` start a chunk; returns that chunk's index (len(chunks) if ``i`` is the length)."""
        if i >= self._length:
            return len(self._chunks)
        chunk_index, local = self._locate(i)
        if local == 0:
            return chunk_index
        chunk = self._chunks[chunk_index]
        if type(chunk) is JournalRun:
            self.settle()
            return self._split_before(i)
        count = chunk.count
        # The boundary sits before file record ``local`` (forward) or ``count - local`` (backward).
        boundary, _ = self._record_bounds(chunk, local if chunk.forward else count - local)
        if chunk.forward:
            head = Chunk(chunk.fid, chunk.start, boundary, local, True, chunk.ms)
            tail = Chunk(chunk.fid, boundary, chunk.end, count - local, True, chunk.ms)
        else:
            head = Chunk(chunk.fid, boundary, chunk.end, local, False, chunk.ms)
            tail = Chunk(chunk.fid, chunk.start, boundary, count - local, False, chunk.ms)
        self._chunks[chunk_index : chunk_index + 1] = [head, tail]
        return chunk_index + 1

    def _write_detached(self, value: bytes) -> Chunk:
        """Writes one value to the right active file as a chunk the caller places anywhere in the list."""
        store = self.store
        fid = self._right_fid
        if fid == 0 or store.size(fid) >= store.segment_size:
            fid = store.create(self.qid)
            self._set_active(RIGHT, fid)
        data = framing.frame(framing.REC_LIST_VALUE, value)
        offset = store.append(fid, data)
        return Chunk(fid, offset, offset + len(data), 1, True, journal.wall_ms())

    def _maybe_compact(self) -> None:
        if len(self._chunks) > COMPACT_CHUNKS:
            self._rewrite(self._iter_chunks(self._chunks))

    def _rewrite(self, values: Iterator[bytes]) -> None:
        """Replaces the contents with ``values`` (lazily derived from the current chunks) in fresh records.

        The old chunks stay untouched until the new ones are complete, so a failure restores them as they were.
        """
        old_chunks = self._chunks
        # The values keep the oldest push time among them (an upper bound of each one's age; unknown stays unknown).
        written = self._write_out(values, ms=self.oldest_push_ms() or -1)
        self._chunks, self._length = written, sum(chunk.count for chunk in written)
        self._engine.unmark_settle(self)
        for fid in {chunk.fid for chunk in old_chunks}:
            self._release(fid)

    def settle(self, budget: int = 0) -> bool:
        """Copies values that live only in the journal into segment files, oldest pushes first, at most
        ``budget`` of them (0: all). Done before a checkpoint lets the journal go, and before a middle operation.
        Each step leaves the list consistent; a failure leaves the step undone. True once nothing is left."""
        chunks = self._chunks
        index = 0
        while index < len(chunks):
            run = chunks[index]
            if type(run) is not JournalRun:
                index += 1
                continue
            if budget and budget <= 0:
                return False
            taken = min(run.count, budget) if budget else run.count
            # The oldest pushes sit at the array front (the head side of a forward run, the tail side of a
            # backward one): they are pushed again, in their order, at their side's active segment file, a chunk
            # per CHUNK_SPAN_MS of push times (a chunk keeps its oldest value's).
            journal_ = self._engine.journal
            ms = journal_.push_ms(run.positions[run.lo])
            if ms:
                later = bisect.bisect_left(journal_.mark_times, ms + CHUNK_SPAN_MS)
                if later < len(journal_.mark_lsns):
                    within = bisect.bisect_left(run.positions, journal_.mark_lsns[later], run.lo) - run.lo
                    taken = max(1, min(taken, within))
            side = RIGHT if run.forward else LEFT
            lengths = run.lengths[run.lo : run.lo + taken]
            values = journal_.read_many(run.positions[run.lo : run.lo + taken], lengths)
            if sum(lengths) + framing.OVERHEAD * taken <= min(SHARED_SETTLE_BYTES, self.store.segment_size // 2):
                written = [self._write_shared(values, run.forward, ms or -1)]
            else:
                written = self._write_out(values, side, ms or -1)
            run.lo += taken
            if run.forward:
                chunks[index:index] = written
                index += len(written)
            else:
                chunks[index + 1 : index + 1] = written
            if not run.count:
                del chunks[index]
            if budget:
                budget -= taken
                if budget <= 0 and any(type(chunk) is JournalRun for chunk in chunks):
                    return False
        self._engine.unmark_settle(self)
        return True

    def _write_shared(self, values: list[bytes], forward: bool, ms: int) -> Chunk:
        """A chunk of ``values`` (in file order, pushed at ``ms``; -1: unknown) appended to the shared file; the
        caller places it. A failure leaves nothing referenced."""
        store = self.store
        data = framing.frame_values(framing.REC_LIST_VALUE, values)
        fid, offset = store.append_shared(data)
        store.ref_shared(fid, self.qid, self)
        return Chunk(fid, offset, offset + len(data), len(values), forward, max(ms, 0))

    def _move_out_of(self, fid: int) -> None:
        """Copies this list's chunks in shared file ``fid`` (mostly dead) to the current shared file, each in place."""
        store = self.store
        for index, chunk in enumerate(self._chunks):
            if type(chunk) is not Chunk or chunk.fid != fid:
                continue
            values: list[bytes] = []
            offset = chunk.start
            while len(values) < chunk.count:
                batch, offset = store.read_many_forward(fid, offset, chunk.end, chunk.count - len(values))
                values += batch
            self._chunks[index] = self._write_shared(values, chunk.forward, chunk.ms or -1)
        self._release(fid)

    def _write_out(self, values: Iterator[bytes] | list[bytes], side: Side = RIGHT, ms: int = 0) -> list[Chunk]:
        """Pushes ``values`` at ``side`` of an empty stand-in list and returns its chunks; the list itself is
        unchanged and the caller places them. On failure nothing written stays referenced. An iterator is consumed
        in batches, so that a rewrite holds little of the list in memory at once; a list is pushed whole. ``ms``:
        their push time (0: now; -1: unknown)."""
        old_chunks, old_length = self._chunks, self._length
        self._chunks, self._length = [], 0
        self._rewriting = old_chunks  # still referenced: no file of theirs may be declared dead meanwhile
        try:
            if type(values) is list:
                self._push(side, values, ms)
            else:
                batch: list[bytes] = []
                for value in values:
                    batch.append(value)
                    if len(batch) >= REWRITE_BATCH:
                        self._push(side, batch, ms)
                        batch = []
                if batch:
                    self._push(side, batch, ms)
        except BaseException:
            new_fids = {chunk.fid for chunk in self._chunks}
            self._chunks, self._length = old_chunks, old_length
            self._rewriting = None
            for fid in new_fids:
                self._release(fid)
            raise
        written = self._chunks
        self._chunks, self._length = old_chunks, old_length
        self._rewriting = None
        return written  # type: ignore[return-value]

    # -- what the generic commands ask of it

    def encoding(self) -> bytes:
        return b"quicklist"  # Redis 7.0 keeps every list as one (small lists as a listpack came with 7.2)

    def memory_usage(self, samples: int = 5) -> int:
        """What Redis 7.0 reports for a quicklist of these values as RPUSH builds it (nodes of listpacks up to
        8 KiB, list-max-listpack-size -2): the first ``samples`` nodes (0: all) measured, their average times the
        node count. A list of up to 1 MiB is read whole to count its nodes exactly; a longer one is read up to the
        nodes measured, and the count of the rest is estimated from its byte total (reading all of it would cost
        the list's size in reads)."""
        exact = self.payload_bytes() <= EXACT_MEMORY_BYTES
        sizes: list[int] = []  # allocation of each node so far (node header and listpack)
        size = 0  # listpack bytes of the node being filled (0: none yet)
        measured_bytes = 0  # value bytes in the nodes measured
        node_bytes = 0  # value bytes in the node being filled
        for value in self:
            length = len(value)
            if size and length < PLAIN_VALUE and size + length + QUICKLIST_ENTRY_ESTIMATE <= QUICKLIST_NODE_BYTES:
                size += memory.listpack_entry(value)
                node_bytes += length
                continue
            if size:
                sizes.append(QUICKLIST_NODE + memory.malloc_size(size))
                measured_bytes += node_bytes
                if not exact and len(sizes) == samples:
                    break
            size = length if length >= PLAIN_VALUE else memory.LISTPACK_EMPTY + memory.listpack_entry(value)
            node_bytes = length
        else:
            sizes.append(QUICKLIST_NODE + memory.malloc_size(size))
            exact = True
        measured = sizes[:samples] if samples else sizes
        if exact:
            nodes = len(sizes)
        else:
            rest = self.payload_bytes() - measured_bytes
            nodes = len(sizes) + max(1, -(-rest * len(sizes) // max(1, measured_bytes)))
        return int(QUICKLIST + sum(measured) / len(measured) * nodes)

    def payload_bytes(self) -> int:
        """The bytes of every value, from the chunks' bounds and the journal runs' lengths (nothing is read)."""
        total = 0
        for chunk in self._chunks:
            if type(chunk) is JournalRun:
                total += sum(chunk.lengths) - sum(chunk.lengths[: chunk.lo])
            else:
                total += chunk.end - chunk.start - chunk.count * framing.OVERHEAD
        return total

    def disk_bytes(self) -> int:
        """The bytes its values take on disk, framing included (nothing is read)."""
        total = 0
        for chunk in self._chunks:
            if type(chunk) is JournalRun:
                total += sum(chunk.lengths[chunk.lo :]) + chunk.count * framing.OVERHEAD
            else:
                total += chunk.end - chunk.start
        return total

    def oldest_push_ms(self) -> int:
        """When its oldest value was pushed (unix ms; 0: unknown or empty): the earliest of its chunks' push times,
        so right to within CHUNK_SPAN_MS (journal values: CLOCK_MARK_MS). Unknown while it holds any value written
        before format 4. O(chunks), as a pass over them is (a list holds few unless middle operations split it)."""
        times = [self._chunk_ms(chunk) for chunk in self._chunks]
        return 0 if not times or 0 in times else min(times)

    def _chunk_ms(self, chunk: Chunk | JournalRun) -> int:
        if type(chunk) is Chunk:
            return chunk.ms
        return self._engine.journal.push_ms(chunk.positions[chunk.lo]) if chunk.count else 0

    # -- lifecycle and persistence

    def drop(self) -> None:
        """The key is gone: every file of this list becomes dead."""
        fids = {chunk.fid for chunk in self._chunks} | {self._left_fid, self._right_fid}
        self._chunks, self._length = [], 0
        self._engine.unmark_settle(self)
        self._left_fid = self._right_fid = 0
        for fid in fids:
            if fid:
                self._release(fid)

    def files(self) -> set[int]:
        return ({chunk.fid for chunk in self._chunks} | {self._left_fid, self._right_fid}) - {0}

    def dump(self) -> bytes:
        """The list's state for the manifest; only after ``settle`` (a manifest names segment chunks only)."""
        if any(type(chunk) is JournalRun for chunk in self._chunks):
            raise AssertionError("dump of a list whose values live in the journal")
        parts = [STATE_HEAD.pack(self._left_fid, self._right_fid, len(self._chunks) | CHUNKS_TIMED)]
        parts += [CHUNK_TIMED.pack(c.fid, c.start, c.end, c.count, c.forward, c.ms) for c in self._chunks]
        return b"".join(parts)

    @classmethod
    def load(cls, engine: StorePort, qid: int, data: bytes | memoryview, offset: int = 0) -> ListLog:
        """The list ``dump`` wrote (at ``offset`` in ``data``), holding its shared files again."""
        log = cls(engine, qid)
        log._left_fid, log._right_fid, _ = STATE_HEAD.unpack_from(data, offset)
        store = engine.store
        for fid, start, end, chunk_count, forward, ms in _packed_chunks(data, offset):
            log._chunks.append(Chunk(fid, start, end, chunk_count, bool(forward), ms))
            log._length += chunk_count
            if store.is_shared(fid):
                store.ref_shared(fid, qid, log)
        return log

    def held_refs(self) -> int:
        """References to this object besides the catalog's: one per shared file naming it (freezing may replace an
        object only when nothing else holds it)."""
        return len(self._shared_bytes())

    def _shared_bytes(self) -> dict[int, int]:
        """Bytes of this list's chunks in each shared file it holds one of."""
        return _shared_held(self.store, ((c.fid, c.start, c.end) for c in self._chunks if type(c) is Chunk))

    def freeze(self) -> bytes | None:
        """The list as a cold catalog entry (see ``COLD_HEAD``), or None if it must stay an object: it holds
        journal runs of more than one value, or is being rewritten. The caller replaces this object with it."""
        chunks = self._chunks
        if self._rewriting is not None or not chunks:
            return None
        if type(chunks[0]) is JournalRun:
            run = chunks[0]
            if len(chunks) != 1 or run.count != 1 or self._left_fid or self._right_fid:
                return None
            self._engine.unmark_settle(self)
            head = _cold_head(COLD_IN_JOURNAL, self.qid, self.expire_ms)
            return head + COLD_VALUE.pack(run.forward, run.positions[run.lo], run.lengths[run.lo])
        if any(type(chunk) is JournalRun for chunk in chunks):
            return None
        store = self.store
        for fid, held in self._shared_bytes().items():
            store.freeze_shared(fid, self.qid, held)
        return _cold_head(COLD_IN_SEGMENTS, self.qid, self.expire_ms) + self.dump()

    @staticmethod
    def cold_from_state(engine: StorePort, qid: int, expire_ms: int | None, state: bytes | memoryview) -> bytes | None:
        """The cold entry of a list ``dump`` described (a checkpoint's manifest), counted by the shared files it
        holds chunks of; None for a list of no chunks (it stays an object, to be found empty)."""
        if not STATE_HEAD.unpack_from(state)[2] & ~CHUNKS_TIMED:
            return None
        store = engine.store
        for fid, held in _shared_held(store, (chunk[:3] for chunk in _packed_chunks(state, 0))).items():
            store.count_cold(fid, held)
        return _cold_head(COLD_IN_SEGMENTS, qid, expire_ms) + bytes(state)

    @classmethod
    def thaw(cls, engine: StorePort, cold: bytes) -> ListLog:
        """The list a cold catalog entry stands for, holding what it held again."""
        kind, qid, expire = COLD_HEAD.unpack_from(cold)
        if kind & ~COLD_EXPIRES == COLD_IN_JOURNAL:
            forward, position, length = COLD_VALUE.unpack_from(cold, COLD_HEAD.size)
            log = cls(engine, qid)
            run = JournalRun(bool(forward))
            run.positions.append(position)
            run.lengths.append(length)
            log._chunks = [run]
            log._length = 1
            engine.mark_settle(log)
        else:
            log = cls.load(engine, qid, cold, COLD_HEAD.size)
            for fid, held in log._shared_bytes().items():
                engine.store.thaw_shared(fid, held)
        log.expire_ms = expire if kind & COLD_EXPIRES else None
        return log

    # -- replay of journaled middle operations (same code paths as live)

    def replay(self, op: int, payload: bytes, record_lsn: int | None) -> None:
        """Re-applies one journaled operation; ``record_lsn`` is where it sits in the journal (a push's values are
        read from there, as live; None: written to segments)."""
        if op == OP_PUSH:
            _, side = PUSH_HEAD.unpack_from(payload)
            if record_lsn is None:
                self._push(Side(side), journal.decode_values(payload, PUSH_HEAD.size))
            else:
                self._push_journaled(side == RIGHT, journal.value_lengths(payload, PUSH_HEAD.size), record_lsn)
        elif op == OP_POP:
            _, side, count = POP_OP.unpack(payload)
            self._pop(Side(side), count, want_values=False)
        elif op == OP_SET:
            _, index = SET_HEAD.unpack_from(payload)
            self._set(index, payload[SET_HEAD.size :])
        elif op == OP_INSERT:
            _, before, pivot_length = INSERT_HEAD.unpack_from(payload)
            pivot = payload[INSERT_HEAD.size : INSERT_HEAD.size + pivot_length]
            found = self.positions(pivot)
            if not found:
                raise ValueError("pivot missing on replay")
            self._insert_at(found[0] if before else found[0] + 1, payload[INSERT_HEAD.size + pivot_length :])
        elif op == OP_REMOVE:
            _, count = REMOVE_HEAD.unpack_from(payload)
            value = payload[REMOVE_HEAD.size :]
            self._remove(self.positions(value, 1 if count >= 0 else -1, abs(count)))
        elif op == OP_TRIM:
            _, start, stop = TRIM_OP.unpack(payload)
            self._trim(start, stop)
        else:
            raise ValueError(f"unknown list operation {op}")


def push_each(engine: StorePort, side: Side, logs: list[ListLog], values: list[list[bytes]]) -> list[int]:
    """``logs[i].push(side, values[i])`` for each ``i`` in order (a list may come more than once), with every journal
    record framed in one go; returns each list's length after its push. The caller has checked the disk's room, and
    that no atomic block is open (those pushes are staged: see ``push``) and no list is a backlog.

    ``_push_journaled`` inlined: this loop runs once per call of a producer spreading over many queues."""
    head, encode = PUSH_HEAD.pack, journal.encode_values
    payloads = [head(log.qid, side) + encode(log_values) for log, log_values in zip(logs, values, strict=True)]
    position = engine.log_many_at(OP_PUSH, payloads) + PUSHED_VALUES_AT  # of the first record's first value
    forward = side == RIGHT
    record_overhead = framing.OVERHEAD
    lengths = []
    for log, log_values, payload in zip(logs, values, payloads, strict=True):
        chunks = log._chunks
        edge = (chunks[-1] if forward else chunks[0]) if chunks else None
        if type(edge) is not JournalRun or edge.forward != forward:
            edge = log._journal_run(forward)
        if len(log_values) == 1:  # the usual call: placed here rather than through _place
            edge.positions.append(position)
            edge.lengths.append(len(log_values[0]))
        else:
            _place(edge, map(len, log_values), position)
        log._length += len(log_values)
        lengths.append(log._length)
        position += record_overhead + len(payload)
    engine.journaled_values += sum(map(len, values))
    return lengths


def _place(run: JournalRun, lengths: Iterable[int], position: int) -> int:
    """Adds to ``run`` values of ``lengths`` lying one after another in the journal from ``position`` (each after
    its length field); returns how many."""
    positions, run_lengths = run.positions, run.lengths
    before = len(positions)
    for length in lengths:
        positions.append(position)
        run_lengths.append(length)
        position += length + journal.VALUE_LEN.size
    return len(positions) - before


def compact_shared(engine: StorePort) -> None:
    """Moves what is left in shared files less than a quarter live into the current shared file, so that a list
    nobody consumes keeps its own few values on disk, not every file it once shared (loop thread, before a
    checkpoint: like settling, it changes segment chunks only, and the old files die once no list refers to them)."""
    store = engine.store
    live: dict[int, int] = dict.fromkeys(store.shared_refs, 0)
    for fid, (_, held) in store.shared_cold.items():
        live[fid] = live.get(fid, 0) + held
    lists = {qid: log for refs in store.shared_refs.values() for qid, log in refs.items()}
    for log in lists.values():
        for chunk in log._chunks:  # type: ignore[attr-defined]
            if type(chunk) is Chunk and chunk.fid in live:
                live[chunk.fid] += chunk.end - chunk.start
    sparse = {
        fid
        for fid, live_bytes in live.items()
        if fid != store.shared_fid and fid in store.files and live_bytes * 4 < store.size(fid)
    }
    if sparse & store.shared_cold.keys():
        # cold lists become objects, named by shared_refs like the others
        engine.thaw_where(LIST, lambda cold: cold_kind(cold) == COLD_IN_SEGMENTS and bool(cold_files(cold) & sparse))
    for fid in sparse:
        for log in list(store.shared_refs.get(fid, {}).values()):
            engine.mark_changed(log)  # its chunks move: the checkpoint writes its catalog entry
            log._move_out_of(fid)  # type: ignore[attr-defined]


def _take(values: Iterator[bytes], count: int) -> Iterator[bytes]:
    for value in values:
        yield value
        count -= 1
        if not count:
            return


# -- snapshots (LRANGE replies streamed while the list keeps changing)


@dataclass(frozen=True, slots=True)
class _SegmentPiece:
    """Records [skip, skip + take) in list order of a chunk as it was; the file bytes it names never change."""

    fid: int
    path: str
    start: int
    end: int
    count: int
    forward: bool
    skip: int
    take: int


@dataclass(frozen=True, slots=True)
class _JournalPiece:
    """Values in journal file ``seq`` (whose first record byte is at ``start_lsn``), in list order."""

    seq: int
    path: str
    start_lsn: int
    positions: array
    lengths: array
    ascending: bool  # positions grow along the list (right pushes) or shrink (left pushes)


class ListSnapshot:
    """The values of a range of a list as they were when it was taken (``ListLog.snapshot``), in bounded memory.

    Files are read through the snapshot's own descriptor, one file at a time, opened by path: a file the list
    stops using is closed by the segment store and retired by checkpoints, so the engine is told which files to
    keep on disk until ``close``. Iterate once; close it (or use it as a context manager) whether read or not.
    """

    __slots__ = ("_engine", "_pieces", "_reader", "length")

    def __init__(
        self, engine: StorePort, length: int, pieces: list[_SegmentPiece | _JournalPiece | list[bytes]]
    ) -> None:
        self._engine: StorePort | None = engine
        self.length = length
        self._pieces = pieces
        self._reader: _BlockReader | None = None
        engine.pin_files(self._segments(), self._journals())

    def _segments(self) -> list[int]:
        return [piece.fid for piece in self._pieces if type(piece) is _SegmentPiece]

    def _journals(self) -> list[int]:
        return [piece.seq for piece in self._pieces if type(piece) is _JournalPiece]

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if type(piece) is _SegmentPiece:
                yield from self._read_segment(piece)
            elif type(piece) is _JournalPiece:
                yield from self._read_journal(piece)
            else:
                yield from piece  # type: ignore[misc]

    def close(self) -> None:
        """Releases the descriptor and lets checkpoints delete the files (idempotent)."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        engine.unpin_files(self._segments(), self._journals())
        self._pieces = []

    def __enter__(self) -> ListSnapshot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self, path: str) -> _BlockReader:
        if self._engine is None:
            raise ValueError("read from a closed list snapshot")
        reader = self._reader
        if reader is None or reader.path != path:
            if reader is not None:
                reader.close()
                self._reader = None
            reader = self._reader = _BlockReader(self._engine.io, path)
        return reader

    def _read_segment(self, piece: _SegmentPiece) -> Iterator[bytes]:
        reader = self._open(piece.path)
        remaining = piece.take
        if piece.forward:  # list order is file order
            offset = self._record_start(reader, piece, piece.skip)
            while remaining:
                value, offset = reader.forward(offset, piece.end)
                remaining -= 1
                yield value  # type: ignore[misc]
        else:  # list order is reverse file order: the first value wanted is file record count - 1 - skip
            end = self._record_start(reader, piece, piece.count - piece.skip)
            while remaining:
                value, end = reader.backward(end, piece.start)
                remaining -= 1
                yield value  # type: ignore[misc]

    @staticmethod
    def _record_start(reader: _BlockReader, piece: _SegmentPiece, file_index: int) -> int:
        """File offset where record ``file_index`` starts (``count``: the chunk's end), walked from the nearer end."""
        if file_index <= piece.count - file_index:
            offset = piece.start
            for _ in range(file_index):
                _, offset = reader.forward(offset, piece.end, False)
            return offset
        offset = piece.end
        for _ in range(piece.count - file_index):
            _, offset = reader.backward(offset, piece.start, False)
        return offset

    def _read_journal(self, piece: _JournalPiece) -> Iterator[bytes]:
        reader = self._open(piece.path)
        base = piece.start_lsn - framing.JOURNAL_HEADER.size  # LSN of file offset 0
        positions, lengths, ascending = piece.positions, piece.lengths, piece.ascending
        for index in range(len(positions)):
            yield reader.span(positions[index] - base, lengths[index], ascending)


class _BlockReader:
    """Reads one file through its own descriptor with a read-ahead block, in either direction."""

    __slots__ = ("_base", "_block", "_fd", "io", "path")

    def __init__(self, io: FileIO, path: str) -> None:
        self.io = io
        self.path = path
        try:
            self._fd = io.open(path, write=False)
        except OSError as error:
            raise StorageReadError(path, 0, error) from error
        self._base = 0
        self._block = b""

    def close(self) -> None:
        if self._fd >= 0:
            self.io.close(self._fd)
            self._fd = -1

    def _bytes(self, offset: int, length: int, forward: bool) -> tuple[bytes, int]:
        """A block holding [offset, offset + length) (unless the file ends first), and its first byte's offset."""
        base, block = self._base, self._block
        if base <= offset and offset + length <= base + len(block):
            return block, base
        if forward:
            base, size = offset, max(length, READ_AHEAD)
        else:
            base = min(offset, max(0, offset + length - READ_AHEAD))
            size = offset + length - base
        try:
            self._base, self._block = base, self.io.pread(self._fd, size, base)
        except OSError as error:
            raise StorageReadError(self.path, base, error) from error
        return self._block, base

    def span(self, offset: int, length: int, forward: bool) -> bytes:
        data, base = self._bytes(offset, length, forward)
        value = data[offset - base : offset - base + length]
        if len(value) < length:
            raise CorruptionError(self.path, offset, "file shorter than a value it holds")
        return value

    def forward(self, offset: int, limit: int, want_value: bool = True) -> tuple[bytes | None, int]:
        """The value of the record starting at ``offset`` (ending by ``limit``) and the offset after it."""
        data, base = self._bytes(offset, framing.HEAD_SIZE, True)
        rel = offset - base
        if rel + framing.HEAD_SIZE <= len(data):
            (length,) = framing.TAIL.unpack_from(data, rel)  # the head starts with the payload length
            if rel + length + framing.OVERHEAD > len(data) and offset + length + framing.OVERHEAD <= limit:
                data, base = self._bytes(offset, length + framing.OVERHEAD, True)
                rel = offset - base
        try:
            _, payload_start, end = framing.parse_forward(data, rel, min(len(data), limit - base))
        except framing.FramingError as error:
            raise CorruptionError(self.path, offset, error.reason) from None
        return (data[payload_start : end - framing.TAIL_SIZE] if want_value else None), base + end

    def backward(self, end: int, low: int, want_value: bool = True) -> tuple[bytes | None, int]:
        """The value of the record ending at ``end`` (starting at or after ``low``) and the offset it starts at."""
        data, base = self._bytes(end - framing.TAIL_SIZE, framing.TAIL_SIZE, False)
        rel_end = end - base
        if rel_end > len(data) or rel_end < framing.TAIL_SIZE:
            raise CorruptionError(self.path, end, "file shorter than a record it holds")
        (length,) = framing.TAIL.unpack_from(data, rel_end - framing.TAIL_SIZE)
        start = end - length - framing.OVERHEAD
        if low <= start < base:
            data, base = self._bytes(start, end - start, False)
        try:
            _, payload_start, rec_start = framing.parse_backward(data, end - base, max(0, low - base))
        except framing.FramingError as error:
            raise CorruptionError(self.path, end, error.reason) from None
        return (data[payload_start : end - base - framing.TAIL_SIZE] if want_value else None), base + rec_start


def push_keys(
    engine: StorePort, db: int, side: Side, pushes: list[tuple[bytes, list[bytes]]], *, checked: bool = False
) -> list[int] | None:
    """Pushes of ``(key, values)`` at ``side`` in order, creating missing lists (a key may come more than once):
    each list's length after its push. Expiry and types are the caller's: unless it has ``checked`` the keys
    (expired what was due, left out keys of other types), None, with nothing changed, when a key holds anything but
    a list without an expiry. Refused as a whole, before anything changes, for a full disk; pushes that also write
    segments (see ``_push_one_by_one``) may stop after some, returning fewer lengths."""
    keyspace = engine.catalog[db]
    get = keyspace.get
    logs = [get(key) for key, _ in pushes]
    for log in logs:
        if type(log) is not ListLog or log.expire_ms is not None or log._length >= BACKLOG_VALUES:
            break
    else:  # the common case, in one pass: every key an existing list, none a backlog or with an expiry
        if not engine.atomic_depth and engine.on_disk:
            engine.before_write(sum(push_growth(values) for _, values in pushes) if engine.maxdisk else 0)
            return push_each(engine, side, logs, [values for _, values in pushes])
    if not all(type(log) is ListLog and log.expire_ms is None for log in logs):
        for index, (key, _) in enumerate(pushes):
            log = logs[index]
            if type(log) is bytes:
                log = logs[index] = engine.get(db, key)
            if log is not None and not checked and (type(log) is not ListLog or log.expire_ms is not None):
                return None
    if (
        engine.atomic_depth
        or not engine.on_disk
        or any(log is not None and log._length >= BACKLOG_VALUES for log in logs)
    ):
        return _push_one_by_one(engine, db, side, pushes)
    missing: list[bytes] = []
    if None in logs:
        missing = [key for key in dict.fromkeys(key for key, _ in pushes) if key not in keyspace]
    growth = 0
    if engine.maxdisk:  # as Engine.create and ListLog.push count it
        growth = sum(len(key) + 64 for key in missing)
        growth += sum(push_growth(values) for _, values in pushes)
    engine.before_write(growth)
    if missing:
        for key in missing:
            engine.create(db, key, LIST.name)
        logs = [keyspace[key] for key, _ in pushes]
    lengths = push_each(engine, side, logs, [values for _, values in pushes])
    for key in missing:  # a new list holding one value stays cold until it is used again (idle queues)
        log = keyspace[key]
        if log._length == 1:
            cold = log.freeze()
            if cold is not None:
                keyspace[key] = cold
                engine.unmark_used(log.qid)
    return lengths


def _push_one_by_one(
    engine: StorePort, db: int, side: Side, pushes: list[tuple[bytes, list[bytes]]]
) -> list[int]:
    """``push_keys`` as separate pushes (inside an atomic block each push is staged on its own; onto a backlog list
    a push writes a segment too, which a full disk can refuse half-way): a storage failure ends the run before the
    call it hit, unless it is the first (then it is raised), and the lengths of the pushes done are returned."""
    lengths: list[int] = []
    for key, values in pushes:
        try:
            log = engine.get(db, key)
            if log is None:
                log = engine.create(db, key, LIST.name)
            lengths.append(log.push(side, values))  # type: ignore[attr-defined]
        except StorageError:
            if not lengths:
                raise
            break
    return lengths


class ListType(ValueType):
    """Lists: values journaled once and settled into segment files before a checkpoint; idle lists go cold."""

    name = "list"
    code = 1
    ops = (OP_PUSH, OP_POP, OP_SET, OP_INSERT, OP_REMOVE, OP_TRIM)
    records = (framing.REC_LIST_VALUE,)
    cold_kinds = (COLD_IN_JOURNAL, COLD_IN_SEGMENTS)
    deletes_when_empty = True

    def create(self, port: StorePort, qid: int) -> ListLog:
        return ListLog(port, qid)

    def rewrite(self, key: bytes, value: Value) -> Iterator[list[bytes]]:
        assert isinstance(value, ListLog)
        return rewrite_batches([b"RPUSH", key], ((item,) for item in value))

    def load(self, port: StorePort, qid: int, state: bytes | memoryview) -> ListLog:
        return ListLog.load(port, qid, state)

    def copy(self, port: StorePort, value: Value, qid: int) -> ListLog:
        """The values pushed in order onto a new list. Inside the engine's atomic block each push journals its
        values, which stay in the journal until a checkpoint settles them (replay pushes them again); the batch
        record holds them in memory until the block ends."""
        source: ListLog = value  # type: ignore[assignment]
        port.before_write(push_growth_bytes(source.payload_bytes(), len(source)) if port.maxdisk else 0)
        copied = ListLog(port, qid)
        try:
            batch: list[bytes] = []
            size = 0
            for item in source:
                batch.append(item)
                size += len(item)
                if len(batch) >= REWRITE_BATCH or size >= SHARED_SETTLE_BYTES:
                    copied.push(RIGHT, batch)
                    batch, size = [], 0
            if batch:
                copied.push(RIGHT, batch)
        except BaseException:
            copied.drop()
            raise
        return copied

    def load_cold(self, port: StorePort, qid: int, expire_ms: int | None, state: bytes) -> bytes | None:
        return ListLog.cold_from_state(port, qid, expire_ms, state)

    def thaw(self, port: StorePort, cold: bytes) -> ListLog:
        return ListLog.thaw(port, cold)

    def cold_expire(self, cold: bytes) -> int | None:
        return cold_expire(cold)

    def cold_state(self, cold: bytes) -> tuple[int, bytes]:
        _, qid, _ = COLD_HEAD.unpack_from(cold)
        return qid, cold[COLD_HEAD.size :]

    def cold_needs_settle(self, cold: bytes) -> bool:
        return cold_kind(cold) == COLD_IN_JOURNAL

    def before_checkpoint(self, port: StorePort) -> None:
        compact_shared(port)

    def spans(self, state: bytes) -> Iterator[tuple[str, int, int, int, int, bool]]:
        for index, (fid, start, end, count, _, _) in enumerate(_packed_chunks(state, 0)):
            yield f"chunk {index}", fid, start, end, count, True


LIST = ListType()
ListLog.vtype = LIST
