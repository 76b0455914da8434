"""A TLS connection that behaves as the non-blocking socket under it: ``recv_into``, ``send``, ``sendmsg``.

The connection layer drives plain non-blocking sockets from its reactor, synchronously (see respq/connection.py);
``trio.SSLStream`` is async and would need a task per connection. This wraps ``ssl.SSLObject`` over memory BIOs
(what ``trio.SSLStream`` does inside) so the reactor serves TLS clients with the same code, and the plaintext path
gains nothing. Two socket rules are kept that the reactor relies on:

* level-triggered readiness: after ``recv_into`` no decrypted byte stays inside; only a partial record waits for
  more bytes from the socket (which epoll then reports). A read takes at most what decrypts into the buffer.
* a partial ``send`` is re-offered from where it stopped: a record the socket took only part of is reported unsent
  until the rest has gone, and the caller offers those bytes again (OpenSSL's SSL_write retry rule).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable

MAX_RECORD = 17 * 1024  # bytes of one TLS record on the wire, at most (16 KiB of data plus header and MAC)
SEND_CHUNK = 256 * 1024  # plaintext encrypted per send call
# Ciphertext is read into one shared buffer, as respq/connection.py reads plaintext: recv(n) would allocate n bytes
# and shrink them on every call. Nothing awaits between a read and its copy into the BIO.
_raw = bytearray(256 * 1024)
_raw_view = memoryview(_raw)


class TLSSocket:
    __slots__ = ("_incoming", "_outgoing", "_pending", "_pending_plain", "obj", "sock")

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._pending = b""  # ciphertext the socket has not taken yet
        self._pending_plain = 0  # plaintext bytes that ciphertext carries: reported sent once it has gone

    # ---- the socket's own -----------------------------------------------------------------------------------
    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.sock.setsockopt(level, option, value)

    def close(self) -> None:
        """Sends close_notify if the socket takes it at once (as Redis's SSL_shutdown), then closes."""
        if self.sock.fileno() >= 0:
            try:
                self.obj.unwrap()
            except (ssl.SSLError, ValueError):
                pass  # it waits for the peer's close_notify, or the handshake never finished
            data = self._pending + self._outgoing.read()
            if data:
                try:
                    self.sock.send(data)
                except OSError:
                    pass
        self.sock.close()

    # ---- handshake ----------------------------------------------------------------------------------------------
    def handshake(self) -> bool | None:
        """One step of the server handshake: True when done, False when it waits for the socket to be readable,
        None when it waits for it to be writable. Raises ssl.SSLError (a bad handshake) or ConnectionError (the
        peer left)."""
        while True:
            if self._pending and not self._flush():
                return None
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                if not self._flush():
                    return None
                try:
                    data = self.sock.recv(MAX_RECORD)
                except BlockingIOError:
                    return False
                if not data:
                    raise ConnectionResetError("Connection closed by peer during the TLS handshake") from None
                self._incoming.write(data)
                continue
            self._flush()  # the last flight (TLSv1.3 tickets); what the socket leaves goes with the first reply
            return True

    def version(self) -> str | None:
        return self.obj.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self.obj.cipher()

    def peer_certificate(self) -> dict | None:  # type: ignore[type-arg]
        return self.obj.getpeercert()

    # ---- data ---------------------------------------------------------------------------------------------------
    def recv_into(self, buffer: bytearray) -> int:
        """Decrypted bytes into buffer, as socket.recv_into: 0 at end of stream, BlockingIOError when nothing is
        there yet (a partial record counts as nothing)."""
        size = len(buffer)
        room = size - self._incoming.pending - MAX_RECORD  # what is read decrypts into buffer, whatever waits
        eof = False
        if room > 0:
            try:
                count = self.sock.recv_into(_raw, min(room, len(_raw)))
            except BlockingIOError:
                count = -1
            if count > 0:
                self._incoming.write(_raw_view[:count])
            elif count == 0:
                eof = True
        view = memoryview(buffer)
        got = 0
        try:
            while got < size:
                count = self.obj.read(size - got, view[got:])
                if not count:  # the peer's close_notify (Python answers 0 rather than raising)
                    eof = True
                    break
                got += count
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            eof = True
        if self._outgoing.pending:  # a reply of the protocol's own (key update, alert)
            self._pending += self._outgoing.read()
            self._flush()
        if got:
            return got
        if eof:
            return 0
        raise BlockingIOError

    def send(self, data: bytes | memoryview) -> int:
        """Encrypts and writes as socket.send: how many bytes of data went (BlockingIOError when none did). Bytes
        of a record the socket took only part of are counted once the rest has gone: offer them again."""
        if self._pending or self._pending_plain:  # (a read may have flushed the record's rest meanwhile)
            if not self._flush():
                raise BlockingIOError
            done, self._pending_plain = self._pending_plain, 0
            if done:
                return done
        chunk = memoryview(data)[:SEND_CHUNK]
        taken = self.obj.write(chunk)
        cipher = self._outgoing.read()
        try:
            sent = self.sock.send(cipher)
        except BlockingIOError:
            sent = 0
        if sent < len(cipher):
            self._pending = cipher[sent:]
            self._pending_plain = taken
            raise BlockingIOError
        return taken

    def sendmsg(self, buffers: Iterable[bytes | memoryview]) -> int:
        return self.send(b"".join(buffers))

    def _flush(self) -> bool:
        """Writes pending ciphertext; True once none is left."""
        if self._outgoing.pending:
            self._pending += self._outgoing.read()
        if not self._pending:
            return True
        try:
            sent = self.sock.send(self._pending)
        except BlockingIOError:
            return False
        self._pending = self._pending[sent:]
        return not self._pending
