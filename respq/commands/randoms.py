"""Random picks with repetition (SRANDMEMBER, ZRANDMEMBER and HRANDFIELD with a negative count), streamed when many.

A count of -1000000000 asks for a billion picks: built whole, the reply would take gigabytes and hold the server for
as long as it takes to build. Past STREAMED_PICKS picks the reply is a StreamedArray drawing its picks while it is
sent, a batch at a time between other clients' commands, from a snapshot of the population taken when the command
ran (the key may change before the last pick goes out; the reply is still one moment's, as Redis's is).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from respq.replies import StreamedArray

STREAMED_PICKS = 4096  # picks with repetition past which the reply is streamed rather than built whole
_DRAW = 1024  # picks drawn at a time while streaming


def streamed_picks(
    population: Iterable[Any],
    count: int,
    shape: Callable[[Any], Iterable[Any]] | None = None,
    width: int = 1,
    *,
    items: bool = False,
) -> StreamedArray:
    """``count`` picks of ``population`` (copied now), each sent as itself (bulk strings), or as the ``width``
    values ``shape`` gives for it (bulk strings, or any reply values with ``items``)."""
    snapshot = list(population)

    def values() -> Iterator[Any]:
        choices = random.choices
        left = count
        while left:
            draw = min(left, _DRAW)
            left -= draw
            if shape is None:
                yield from choices(snapshot, k=draw)
            else:
                for picked in choices(snapshot, k=draw):
                    yield from shape(picked)

    return StreamedArray(count * width, values(), items=items)
