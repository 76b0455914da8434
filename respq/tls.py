"""TLS server contexts from Redis 7.0's tls-* directives, as Redis's tlsConfigure builds its SSL_CTX.

Plain data in, an ``ssl.SSLContext`` out: no sockets, no Trio, no RESP. Every listener that serves TLS (the RESP
port; an HTTP listener with ``http-tls yes``) builds its context here and wraps connections its own way, with
``context.wrap_bio`` (a reactor driving non-blocking sockets) or ``trio.SSLStream(stream, context,
server_side=True)`` (a task per connection).

A context is built whole or not at all: ``TLSContextError`` carries the lines Redis would log, and the caller keeps
the context it had (CONFIG SET of a file directive reloads the certificates this way, as Redis does).
"""

from __future__ import annotations

import _ssl
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Log lines, worded after Redis 7.0's tls.c.
NO_CERT_FILE = "No tls-cert-file configured!"
NO_KEY_FILE = "No tls-key-file configured!"
NO_CA = (
    "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or "
    "tls-auth-clients are enabled!"
)
BAD_PROTOCOLS = "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
# respq's own: a set with a gap cannot be expressed as Python's minimum/maximum version.
GAPPED_PROTOCOLS = "tls-protocols must name consecutive versions (e.g. 'TLSv1.2 TLSv1.3') in respq"
CERT_FAILED = "Failed to load certificate: {}: {}"
KEY_FAILED = "Failed to load private key: {}: {}"
CA_FAILED = "Failed to configure CA certificate(s) file/directory: {}"
CIPHERS_FAILED = "Failed to configure ciphers: {}"
DH_FAILED = "Failed to load DH params file: {}: {}"
# Start-up and CONFIG SET answers when the context cannot be built (Redis 7.0's server.c and config.c).
STARTUP_FAILED = "Failed to configure TLS. Check logs for more info."
UPDATE_FAILED = "Unable to update TLS configuration. Check server logs."

AUTH_CLIENTS = ("no", "yes", "optional")  # tls-auth-clients, in the order of its config values
_VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}
_ORDER = list(_VERSIONS.values())
_LIBRARY_NAMES = {"SSL": "SSL routines", "X509": "x509 certificate routines", "PEM": "PEM routines"}
_PEM_BEGIN, _PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
DEFAULT_PROTOCOLS = "TLSv1.2 TLSv1.3"  # Redis's REDIS_TLS_PROTO_DEFAULT when tls-protocols is unset
# The directives a context is built from: a CONFIG SET of any of them rebuilds it.
CONTEXT_DIRECTIVES = frozenset(
    {
        "tls-cert-file",
        "tls-key-file",
        "tls-key-file-pass",
        "tls-ca-cert-file",
        "tls-ca-cert-dir",
        "tls-auth-clients",
        "tls-protocols",
        "tls-ciphers",
        "tls-prefer-server-ciphers",
        "tls-dh-params-file",
        "tls-session-caching",
    }
)


class TLSContextError(Exception):
    """The context cannot be built; ``str()`` is the line Redis logs for the cause."""


@dataclass(frozen=True)
class TLSSettings:
    """What a server context is made of: the tls-* directives, by meaning."""

    cert_file: str | None = None
    key_file: str | None = None
    key_file_pass: str | None = None
    ca_cert_file: str | None = None
    ca_cert_dir: str | None = None
    auth_clients: str = "yes"  # "no", "yes" or "optional"
    protocols: str | None = None  # space-separated, case-insensitive; None = TLSv1.2 and TLSv1.3
    ciphers: str | None = None  # OpenSSL cipher list for TLSv1.2 and below; None = OpenSSL's default
    prefer_server_ciphers: bool = False
    dh_params_file: str | None = None
    session_caching: bool = True

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TLSSettings:
        """From directive values keyed by name, as respq's Config.values holds them (tls-auth-clients as its
        number, yes/no directives as bools, unset strings as None)."""
        return cls(
            cert_file=values["tls-cert-file"],
            key_file=values["tls-key-file"],
            key_file_pass=values["tls-key-file-pass"],
            ca_cert_file=values["tls-ca-cert-file"],
            ca_cert_dir=values["tls-ca-cert-dir"],
            auth_clients=AUTH_CLIENTS[values["tls-auth-clients"]],
            protocols=values["tls-protocols"],
            ciphers=values["tls-ciphers"],
            prefer_server_ciphers=values["tls-prefer-server-ciphers"],
            dh_params_file=values["tls-dh-params-file"],
            session_caching=values["tls-session-caching"],
        )


def protocol_range(text: str | None) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """tls-protocols as (minimum, maximum); raises TLSContextError for a name Redis refuses, or a set with a gap."""
    names = (text or DEFAULT_PROTOCOLS).split(" ")
    chosen = set()
    for name in names:
        version = _VERSIONS.get(name.lower())
        if version is None:
            raise TLSContextError(BAD_PROTOCOLS)
        chosen.add(_ORDER.index(version))
    low, high = min(chosen), max(chosen)
    if len(chosen) != high - low + 1:
        raise TLSContextError(GAPPED_PROTOCOLS)
    return _ORDER[low], _ORDER[high]


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    """A server-side context, built as Redis 7.0 builds its own; raises TLSContextError (nothing half-applied)."""
    if not settings.cert_file:
        raise TLSContextError(NO_CERT_FILE)
    if not settings.key_file:
        raise TLSContextError(NO_KEY_FILE)
    if settings.auth_clients != "no" and not settings.ca_cert_file and not settings.ca_cert_dir:
        raise TLSContextError(NO_CA)
    minimum, maximum = protocol_range(settings.protocols)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # OpenSSL's security level still applies, as in Redis: TLSv1 and TLSv1.1 need it lowered in tls-ciphers.
    context.minimum_version = minimum
    context.maximum_version = maximum
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_SINGLE_DH_USE | ssl.OP_SINGLE_ECDH_USE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)  # Redis: SSL_OP_NO_CLIENT_RENEGOTIATION
    if settings.prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if not settings.session_caching:
        # Python cannot switch OpenSSL's server session cache off; without tickets (TLSv1.3 and TLSv1.2) a
        # client has nothing to resume with but a TLSv1.2 session id.
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file, password=settings.key_file_pass or "")
    except ssl.SSLError as error:
        raise TLSContextError(_load_failure(settings, error)) from None
    except OSError as error:
        failed = settings.cert_file if _unreadable(settings.cert_file) else settings.key_file
        what = CERT_FAILED if failed == settings.cert_file else KEY_FAILED
        raise TLSContextError(what.format(failed, _openssl_text(error))) from None
    if settings.ca_cert_file or settings.ca_cert_dir:
        try:
            context.load_verify_locations(cafile=settings.ca_cert_file, capath=settings.ca_cert_dir)
        except (ssl.SSLError, OSError) as error:
            raise TLSContextError(CA_FAILED.format(_openssl_text(error))) from None
    context.verify_mode = {"no": ssl.CERT_NONE, "yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL}[
        settings.auth_clients
    ]
    # Unset, OpenSSL's own default list, as Redis gets (Python would otherwise put its stricter list in place).
    ciphers = settings.ciphers or "DEFAULT"
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError:
        raise TLSContextError(CIPHERS_FAILED.format(ciphers)) from None
    if settings.dh_params_file:
        try:
            context.load_dh_params(settings.dh_params_file)
        except (ssl.SSLError, OSError) as error:
            raise TLSContextError(DH_FAILED.format(settings.dh_params_file, _openssl_text(error))) from None
    return context


def _unreadable(path: str | None) -> bool:
    try:
        with open(path or "", "rb"):
            return False
    except OSError:
        return True


def _load_failure(settings: TLSSettings, error: ssl.SSLError) -> str:
    """Which of certificate and key failed to load (Python loads both in one call): the certificate when its file
    holds no readable one, else the key (a wrong password, a key that does not match the certificate)."""
    if not _has_certificate(settings.cert_file):
        return CERT_FAILED.format(settings.cert_file, _openssl_text(error))
    return KEY_FAILED.format(settings.key_file, _openssl_text(error))


def _has_certificate(path: str | None) -> bool:
    try:
        with open(path or "", encoding="ascii", errors="replace") as file:
            text = file.read()
        begin = text.index(_PEM_BEGIN)
        ssl.PEM_cert_to_DER_cert(text[begin : text.index(_PEM_END, begin) + len(_PEM_END)])
    except (OSError, ValueError):
        return False
    return True


def _openssl_text(error: BaseException) -> str:
    """An OpenSSL error as OpenSSL 3's ERR_error_string writes it (what Redis logs): ``error:0A00010B:SSL
    routines::wrong version number``. Python keeps the library and reason names; the packed code comes from the
    table CPython's _ssl ships, and is left out when it is not there."""
    if isinstance(error, ssl.SSLError) and error.reason:
        text = str(error.args[1] if len(error.args) > 1 else error)
        # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1002)" -> "wrong version number"
        text = text.partition("] ")[2].rpartition(" (_ssl.c")[0] or error.reason.lower().replace("_", " ")
        library = error.library or "SSL"
        codes = getattr(_ssl, "err_names_to_codes", {}).get(error.reason)
        code = f"{(codes[0] << 23) | codes[1]:08X}" if codes else ""
        return f"error:{code}:{_LIBRARY_NAMES.get(library, library + ' routines')}::{text}"
    if isinstance(error, OSError) and error.errno and error.strerror:  # OpenSSL 3 packs errno as a system error
        return f"error:{0x80000000 | error.errno:08X}:system library::{error.strerror}"
    return str(error) or type(error).__name__


def handshake_failure(error: BaseException) -> str:
    """What Redis logs after "Error accepting a client connection: " for a failed handshake."""
    return _openssl_text(error)


def describe_session(obj: ssl.SSLObject | ssl.SSLSocket) -> str:
    """Protocol and cipher of an established session, for logs and benchmarks ("TLSv1.3 TLS_AES_256_GCM_SHA384")."""
    cipher = obj.cipher()
    return f"{obj.version()} {cipher[0] if cipher else '?'}"


def client_context(
    *,
    cacert: str | None = None,
    cacertdir: str | None = None,
    cert: str | None = None,
    key: str | None = None,
    insecure: bool = False,
) -> ssl.SSLContext:
    """A client context as redis-cli makes one from its options (--cacert, --cacertdir, --cert, --key,
    --insecure): the server's chain is verified against the CA given, else the system's; like redis-cli, the host
    name is not matched against the certificate (--sni only names the server). Raises OSError or ssl.SSLError when a
    file cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if insecure:
        context.verify_mode = ssl.CERT_NONE
    elif cacert or cacertdir:
        context.load_verify_locations(cafile=cacert, capath=cacertdir)
    else:
        context.load_default_certs()
    if cert:
        context.load_cert_chain(cert, key)
    return context
