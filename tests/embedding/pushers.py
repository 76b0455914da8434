"""A child process for the kill -9 tests: opens a data directory in-process, pushes batches and adds stream
entries, and prints each acknowledged total on a line of its own, until killed."""

from __future__ import annotations

import sys

import respq

BATCH = 100


def main() -> None:
    path, appendfsync = sys.argv[1], sys.argv[2]
    queues = respq.open(path, appendfsync=appendfsync)
    print("ready", flush=True)
    pushed = added = 0
    while True:
        pushed = queues.push("jobs", [b"%d" % (pushed + i) for i in range(BATCH)])
        added += len(queues.add_many("events", [{"n": b"%d" % (added + i)} for i in range(10)]))
        print(pushed, added, flush=True)  # both acknowledged: they must survive what comes next


if __name__ == "__main__":
    main()
