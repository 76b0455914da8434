"""The recovery check must catch each kind of violation it claims to: a checker that cannot fail proves nothing."""

from __future__ import annotations

from tests.crash.model import History, check_recovery

ORDER = {b"q": 1, b"moved:q": 1}


def history() -> History:
    h = History()
    h.pushes += [(b"q", [b"0:1", b"0:2"], True), (b"q", [b"0:3"], True), (b"q", [b"0:4"], False)]
    h.pops.append((b"q", [b"0:1"], 1, True))
    h.moves.append((b"q", b"moved:q", b"0:2", True))
    return h


def test_a_correct_recovery_passes() -> None:
    assert check_recovery({}, history(), {b"q": [b"0:3"], b"moved:q": [b"0:2"]}, ORDER) == []
    assert check_recovery({}, history(), {b"q": [b"0:3", b"0:4"], b"moved:q": [b"0:2"]}, ORDER) == []


def test_each_violation_is_caught() -> None:
    cases = {
        "acknowledged push lost": {b"moved:q": [b"0:2"]},
        "acknowledged pop undone": {b"q": [b"0:1", b"0:3"], b"moved:q": [b"0:2"]},
        "acknowledged LMOVE undone": {b"q": [b"0:2", b"0:3"]},
        "LMOVE'd twice": {b"q": [b"0:2", b"0:3"], b"moved:q": [b"0:2"]},
        "duplicate": {b"q": [b"0:3", b"0:3"], b"moved:q": [b"0:2"]},
        "order": {b"q": [b"0:4", b"0:3"], b"moved:q": [b"0:2"]},
        "garbage": {b"q": [b"0:3", b"9:9"], b"moved:q": [b"0:2"]},
    }
    for name, observed in cases.items():
        assert check_recovery({}, history(), observed, ORDER), name


def test_an_unanswered_pop_may_take_only_as_many_as_it_asked_for() -> None:
    h = History()
    h.pushes.append((b"q", [b"0:1", b"0:2", b"0:3"], True))
    h.pops.append((b"q", None, 2, False))
    assert check_recovery({}, h, {b"q": [b"0:3"]}, ORDER) == []
    assert check_recovery({}, h, {}, ORDER)


def test_an_unanswered_lmove_leaves_the_element_in_exactly_one_list() -> None:
    h = History()
    h.pushes.append((b"q", [b"0:1"], True))
    h.moves.append((b"q", b"moved:q", None, False))
    assert check_recovery({}, h, {b"moved:q": [b"0:1"]}, ORDER) == []
    assert check_recovery({}, h, {b"q": [b"0:1"]}, ORDER) == []
    assert check_recovery({}, h, {b"q": [b"0:1"], b"moved:q": [b"0:1"]}, ORDER)
