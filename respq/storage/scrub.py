"""Background scrub: verifies every record of the checkpointed segments that start-up does not rescan.

Start-up trusts the manifest and reads nothing a checkpoint covers (that keeps a restart over a large backlog
fast), so a flipped byte in an old segment would otherwise only surface when that record is read. The scrub walks
each segment file the manifest lists, up to its checkpointed length (bytes after it belong to journal replay,
which verified them), with the same record walker as ``respq check``. It reads only, through its own descriptors,
and is advanced a chunk at a time by ``step()`` so the caller decides the pace and the thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from respq.storage import manifest
from respq.storage.check import SegmentFault, verify_segment
from respq.storage.errors import CorruptionError, FormatError
from respq.storage.fileio import DEFAULT_IO, FileIO
from respq.storage.segments import QUEUES_DIR, queue_dir_name, segment_name

RUNNING, DONE, OFF = "running", "done", "off"
FILE_COST = 64 << 10  # what opening one segment file counts for against a step's budget, in bytes
_NEXT_FILE = object()  # the walk moved on to another file
_END = object()


@dataclass(frozen=True)
class ScrubFault:
    """A problem the scrub found: ``message`` names the file and offset as ``respq check`` does."""

    path: str
    offset: int
    message: str


class Scrub:
    """Progress and findings of one pass; ``step()`` runs in a worker thread, the counters are read from anywhere."""

    def __init__(self, root: str, io: FileIO = DEFAULT_IO) -> None:
        self.root = root
        self.io = io
        self.status = RUNNING
        self.bytes_verified = 0
        self.errors = 0
        self.last_fault: ScrubFault | None = None
        self._walk: Iterator[object] | None = None

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def stop(self) -> None:
        """Abandons the pass (the scrub was switched off)."""
        if self._walk is not None:
            self._walk.close()  # closes the segment file it holds open
        self.status = OFF

    def step(self, budget: int) -> list[ScrubFault]:
        """Verifies about ``budget`` more bytes; returns the faults found meanwhile. ``status`` is DONE at the end.

        Opening a file counts as FILE_COST bytes, so a step over thousands of tiny segments stays short too."""
        if self.status != RUNNING:
            return []
        if self._walk is None:
            self._walk = self._files()
        faults: list[ScrubFault] = []
        spent = 0
        while spent < budget:
            item = next(self._walk, _END)
            if item is _END:
                self.status = DONE
                break
            if item is _NEXT_FILE:
                spent += FILE_COST
            elif isinstance(item, ScrubFault):
                faults.append(item)
                self.errors += 1
                self.last_fault = item
            elif isinstance(item, int):
                spent += item
                self.bytes_verified += item
        return faults

    def _files(self) -> Iterator[object]:
        """Yields, for every file of the checkpoint read at the start: _NEXT_FILE, the growth of verified bytes, and
        any fault."""
        state = self._read_manifest()
        if isinstance(state, ScrubFault):
            yield state
            return
        if state is None:
            return
        for fid, (qid, size) in sorted(state.files.items()):
            path = os.path.join(self.root, QUEUES_DIR, queue_dir_name(qid), segment_name(fid))
            done = 0
            yield _NEXT_FILE
            try:
                for verified in verify_segment(self.io, path, size):
                    yield verified - done
                    done = verified
            except SegmentFault as fault:
                if self._still_listed(fid):
                    yield ScrubFault(fault.path, fault.offset, str(fault))
                # Otherwise a checkpoint retired the file while it was read: it holds nothing live any more.

    def _read_manifest(self) -> manifest.ManifestData | ScrubFault | None:
        try:
            return manifest.read(self.io, self.root, with_pages=False)  # recovery verified the pages
        except CorruptionError as error:
            return ScrubFault(error.path, error.offset, str(error))
        except FormatError as error:
            return ScrubFault(self.root, 0, str(error))

    def _still_listed(self, fid: int) -> bool:
        """Whether the current manifest still lists file ``fid`` (checkpointed bytes never change while listed)."""
        state = self._read_manifest()
        if not isinstance(state, manifest.ManifestData):
            return True  # cannot tell: report what was found
        return fid in state.files
