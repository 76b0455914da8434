"""A child process for the kill -9 tests: opens a data directory in-process, pushes batches and adds stream
entries (one call each, or, with ``pipeline``, PIPELINED batches and the entries in one pipeline), and prints each
acknowledged total on a line of its own, until killed."""

from __future__ import annotations

import sys

import respq

BATCH = 100
PIPELINED = 8


def main() -> None:
    path, appendfsync = sys.argv[1], sys.argv[2]
    pipelined = sys.argv[3:] == ["pipeline"]
    queues = respq.open(path, appendfsync=appendfsync)
    print("ready", flush=True)
    pushed = added = 0
    while pipelined:
        pipeline = queues.pipeline()
        for batch in range(PIPELINED):
            pipeline.push("jobs", [b"%d" % (pushed + batch * BATCH + i) for i in range(BATCH)])
        pipeline.add_many("events", [{"n": b"%d" % (added + i)} for i in range(10)])
        *lengths, ids = pipeline.execute()
        pushed, added = lengths[-1], added + len(ids)
        print(pushed, added, flush=True)
    while True:
        pushed = queues.push("jobs", [b"%d" % (pushed + i) for i in range(BATCH)])
        added += len(queues.add_many("events", [{"n": b"%d" % (added + i)} for i in range(10)]))
        print(pushed, added, flush=True)  # both acknowledged: they must survive what comes next


if __name__ == "__main__":
    main()
