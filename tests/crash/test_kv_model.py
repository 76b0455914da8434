"""The key-value check must catch each kind of violation it claims to (K1-K3), from fabricated runs."""

from __future__ import annotations

from tests.crash.kv_model import ClientRun, Item, Op, check_client

S = b"string"
READ = (10_000, 10_050)  # when the read after the restart ran (ms)


def run() -> ClientRun:
    """From {a: 1}: SET b 2 (answered), MSET a 3 c 4 (answered), APPEND b x (not answered)."""
    base = {b"a": Item(S, b"1")}
    after_set = {**base, b"b": Item(S, b"2")}
    after_mset = {**after_set, b"a": Item(S, b"3"), b"c": Item(S, b"4")}
    after_append = {**after_mset, b"b": Item(S, b"2x")}
    ops = [
        Op(("SET", b"b", b"2"), b"OK", after_set),
        Op(("MSET", b"a", b"3", b"c", b"4"), b"OK", after_mset),
        Op(("APPEND", b"b", b"x"), 2, after_append),
    ]
    return ClientRun(0, base, ops, 2, [])


def acked() -> dict[bytes, Item]:
    return dict(run().ops[1].after)


def test_a_correct_recovery_passes_with_or_without_the_unanswered_command() -> None:
    assert check_client(run(), acked(), READ) == ([], 0)
    assert check_client(run(), dict(run().ops[2].after), READ) == ([], 1)


def test_each_violation_is_caught() -> None:
    cases = {
        "acknowledged SET lost": {b"a": Item(S, b"3"), b"c": Item(S, b"4")},
        "half of an MSET": {**acked(), b"c": Item(S, b"4"), b"a": Item(S, b"1")},
        "MSET without its other key": {b"a": Item(S, b"3"), b"b": Item(S, b"2")},
        "damaged value": {**acked(), b"b": Item(S, b"3")},
        "a key from nowhere": {**acked(), b"d": Item(S, b"1")},
        "a type changed": {**acked(), b"b": Item(b"hash", ((b"f", b"2"),))},
        "an expiry invented": {**acked(), b"b": Item(S, b"2", (99_999, 99_999))},
    }
    for name, observed in cases.items():
        problems, kept = check_client(run(), observed, READ)
        assert problems and kept == -1, name


def test_expiry_is_compared_with_the_window_the_model_knows() -> None:
    base: dict[bytes, Item] = {}
    later = {b"k": Item(S, b"v", (20_000, 20_100))}  # a relative expiry: somewhere in the window
    soon = {b"k": Item(S, b"v", (10_020, 10_020))}  # comes during the read
    gone = {b"k": Item(S, b"v", (9_000, 9_000))}  # passed before the read
    for after, observed, ok in [
        (later, {b"k": Item(S, b"v", (20_050, 20_050))}, True),
        (later, {b"k": Item(S, b"v", (30_000, 30_000))}, False),
        (later, {b"k": Item(S, b"v")}, False),  # expiry lost
        (later, {}, False),
        (soon, {}, True),
        (soon, {b"k": Item(S, b"v", (10_020, 10_020))}, True),
        (gone, {}, True),
        (gone, {b"k": Item(S, b"v", (9_000, 9_000))}, False),  # an expired key shown
    ]:
        problems, _ = check_client(ClientRun(0, base, [Op(("SET",), b"OK", after)], 1, []), observed, READ)
        assert not problems if ok else problems, (after, observed)


def test_a_wrong_reply_is_reported() -> None:
    wrong = run()
    wrong.wrong_replies.append("client 0: ('GET', b'a') answered b'1', expected b'3'")
    assert check_client(wrong, acked(), READ)[0]
