"""Certificates for TLS tests and benchmarks, made on the spot with `cryptography`: a CA, a server certificate for
localhost / 127.0.0.1, a client certificate, one of each from another CA, an expired server certificate and a
password-protected key."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "s3cret pass"


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path  # the CA both server and client certificates chain to
    server_cert: Path
    server_key: Path
    server_key_encrypted: Path  # server_key under KEY_PASSWORD
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nobody here trusts
    other_server_cert: Path  # signed by other_ca
    other_server_key: Path
    other_client_cert: Path  # signed by other_ca
    other_client_key: Path
    expired_server_cert: Path  # signed by ca, expired yesterday
    expired_server_key: Path
    ca_dir: Path  # ca as a hashed directory (tls-ca-cert-dir)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], common_name: str, *, server: bool, expired: bool = False
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1))
        if expired
        else (
            now - datetime.timedelta(days=1),
            now + datetime.timedelta(days=30),
        )
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("respq test CA")
    other = _ca("respq other CA")
    server_key, server_cert = _issue(ca, "localhost", server=True)
    client_key, client_cert = _issue(ca, "respq test client", server=False)
    other_server_key, other_server_cert = _issue(other, "localhost", server=True)
    other_client_key, other_client_cert = _issue(other, "respq other client", server=False)
    expired_key, expired_cert = _issue(ca, "localhost", server=True, expired=True)
    ca_dir = directory / "ca-dir"
    ca_dir.mkdir(exist_ok=True)
    ca_path = _write_cert(directory / "ca.crt", ca[1])
    _write_cert(ca_dir / f"{_subject_hash(ca[1])}.0", ca[1])
    return Certs(
        dir=directory,
        ca=ca_path,
        server_cert=_write_cert(directory / "server.crt", server_cert),
        server_key=_write_key(directory / "server.key", server_key),
        server_key_encrypted=_write_key(directory / "server-encrypted.key", server_key, KEY_PASSWORD),
        client_cert=_write_cert(directory / "client.crt", client_cert),
        client_key=_write_key(directory / "client.key", client_key),
        other_ca=_write_cert(directory / "other-ca.crt", other[1]),
        other_server_cert=_write_cert(directory / "other-server.crt", other_server_cert),
        other_server_key=_write_key(directory / "other-server.key", other_server_key),
        other_client_cert=_write_cert(directory / "other-client.crt", other_client_cert),
        other_client_key=_write_key(directory / "other-client.key", other_client_key),
        expired_server_cert=_write_cert(directory / "expired-server.crt", expired_cert),
        expired_server_key=_write_key(directory / "expired-server.key", expired_key),
        ca_dir=ca_dir,
    )


def _subject_hash(cert: x509.Certificate) -> str:
    """OpenSSL's subject hash (the file name a CA directory is looked up by), from `openssl x509 -hash`."""
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-subject_hash"],
        input=cert.public_bytes(serialization.Encoding.PEM),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()
