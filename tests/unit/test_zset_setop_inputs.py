"""ZUNION/ZINTER/ZDIFF and their STORE forms, and ZINTERCARD, take set keys as inputs, every member scored 1 (as Redis
does). The set type's contract is ``type == "set"``, ``len``, iteration and ``in``: a stand-in with that contract
checks the inputs here; the differential cases with real set keys come with the set type."""

from __future__ import annotations

from collections.abc import Iterator

from respq.types.zsets.commands import SetOpInput


class StandInSet:
    type = "set"

    def __init__(self, members: list[bytes]) -> None:
        self.members = members

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.members)

    def __contains__(self, member: object) -> bool:
        return member in self.members


def test_a_set_input_scores_every_member_1() -> None:
    source = SetOpInput(StandInSet([b"b", b"a"]))
    assert len(source) == 2
    assert source.items() == [(b"b", 1.0), (b"a", 1.0)]
    assert source.find(b"a") == 1.0
    assert source.find(b"z") is None


def test_a_missing_key_is_an_empty_input() -> None:
    source = SetOpInput(None)
    assert len(source) == 0
    assert source.items() == []
    assert source.find(b"a") is None
