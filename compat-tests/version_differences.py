"""Replies known to differ between Redis versions, in one table.

respq follows Redis 7.0. A command listed here is checked on each side on its own: the oracle against the form for
its version (so a stale entry fails loudly, and on this 7.0 machine the 7.0 forms are verified), respq against the
form of the version it follows (7.0 unless the entry says otherwise). Nothing listed is skipped.

Keys are a case's command line (arguments separated by single spaces, compared without regard to case).
Values map the first version a form applies to onwards to the reply, after the case's normalizations.
"""

from __future__ import annotations

from dataclasses import dataclass

Version = tuple[int, int]

RESPQ_TARGET: Version = (7, 0)

_INFO_CLIENTS_7_0 = (
    b"blocked_clients, client_recent_max_input_buffer, client_recent_max_output_buffer, clients_in_timeout_table, "
    b"cluster_connections, connected_clients, maxclients, tracking_clients"
)
_INFO_CLIENTS_7_2 = _INFO_CLIENTS_7_0.replace(
    b"tracking_clients", b"total_blocking_keys, total_blocking_keys_on_nokey, tracking_clients"
)
_INFO_CLIENTS_7_4 = (
    b"blocked_clients, client_recent_max_input_buffer, client_recent_max_output_buffer, clients_in_timeout_table, "
    b"cluster_connections, connected_clients, maxclients, pubsub_clients, total_blocking_keys, "
    b"total_blocking_keys_on_nokey, total_watched_keys, tracking_clients, watching_clients"
)


def _info(body: bytes) -> dict[int, bytes]:
    """The info-values form of INFO clients in RESP2 (bulk string) and RESP3 (verbatim string)."""
    text = b"headers: Clients\nClients: " + body
    return {2: b"$%d\r\n%s\r\n" % (len(text), text), 3: b"=%d\r\ntxt:%s\r\n" % (len(text) + 4, text)}


# Reply forms per protocol version (2, 3) when they differ by protocol; plain bytes when they do not.
Form = bytes | dict[int, bytes]


@dataclass(frozen=True)
class Difference:
    forms: dict[Version, Form]  # first version a form applies to -> the form
    why: str
    # respq follows 7.0 unless it deliberately answers like a later version (commands marked `extension` in its
    # command table, e.g. the handshake commands clients of 7.2+ send).
    respq_follows: Version = RESPQ_TARGET


_UNKNOWN_SETINFO = b"-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"
_UNKNOWN_NO_TOUCH = b"-ERR unknown subcommand 'NO-TOUCH'. Try CLIENT HELP.\r\n"
_SETINFO = "CLIENT SETINFO exists from 7.2; respq answers it because client handshakes send it"
_NO_TOUCH = "CLIENT NO-TOUCH exists from 7.2; respq accepts it as an extension"

KNOWN_DIFFERENCES: dict[str, Difference] = {
    "CLIENT SETINFO LIB-NAME redis-py": Difference({(7, 0): _UNKNOWN_SETINFO, (7, 2): b"+OK\r\n"}, _SETINFO, (7, 2)),
    "CLIENT SETINFO LIB-VER 5.0.0": Difference({(7, 0): _UNKNOWN_SETINFO, (7, 2): b"+OK\r\n"}, _SETINFO, (7, 2)),
    "CLIENT SETINFO lib-name \"\"": Difference({(7, 0): _UNKNOWN_SETINFO, (7, 2): b"+OK\r\n"}, _SETINFO, (7, 2)),
    "CLIENT SETINFO LIB-NAME \"a b\"": Difference(
        {(7, 0): _UNKNOWN_SETINFO,
         (7, 2): b"-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"}, _SETINFO, (7, 2)),
    "CLIENT SETINFO colour blue": Difference(
        {(7, 0): _UNKNOWN_SETINFO, (7, 2): b"-ERR Unrecognized option 'colour'\r\n"}, _SETINFO, (7, 2)),
    "CLIENT NO-TOUCH ON": Difference({(7, 0): _UNKNOWN_NO_TOUCH, (7, 2): b"+OK\r\n"}, _NO_TOUCH, (7, 2)),
    "CLIENT NO-TOUCH OFF": Difference({(7, 0): _UNKNOWN_NO_TOUCH, (7, 2): b"+OK\r\n"}, _NO_TOUCH, (7, 2)),
    "INFO clients": Difference(
        {(7, 0): _info(_INFO_CLIENTS_7_0), (7, 2): _info(_INFO_CLIENTS_7_2), (7, 4): _info(_INFO_CLIENTS_7_4)},
        "new fields: blocking-key counters in 7.2, pub/sub and WATCH counters in 7.4",
    ),
}


def parse_version(text: str) -> Version:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def expected_form(command_text: str, version: Version, protocol: int) -> bytes | None:
    """The table's reply for this command on this version, or None if the command is not listed."""
    difference = _lookup(command_text)
    if difference is None:
        return None
    forms = difference.forms
    applicable = [v for v in forms if v <= version]
    if not applicable:
        raise LookupError(f"{command_text!r}: no form for Redis {version} in KNOWN_DIFFERENCES")
    form = forms[max(applicable)]
    return form[protocol] if isinstance(form, dict) else form


def respq_version(command_text: str) -> Version:
    """The version whose reply respq must give for this command."""
    difference = _lookup(command_text)
    return difference.respq_follows if difference else RESPQ_TARGET


def is_listed(command_text: str) -> bool:
    return _lookup(command_text) is not None


def _lookup(command_text: str) -> Difference | None:
    wanted = " ".join(command_text.split()).lower()
    for key, difference in KNOWN_DIFFERENCES.items():
        if key.lower() == wanted:
            return difference
    return None
