"""python -m bench.tls: `redis-benchmark --tls` against respq and redis-server with the same certificate.

LPUSH with 50 clients at P=16 under appendfsync ``always`` (``--policy`` to change it), over TLS and, for
reference, over plaintext; each server fresh per run, servers on core 0 and redis-benchmark on core 1, runs
alternating which server goes first. Prints requests per second, the respq/Redis ratio, and the protocol and
cipher each server negotiates with a default client. Not part of the CI suite (python -m bench has the rows).
"""

from __future__ import annotations

import argparse
import csv
import io
import socket
import ssl
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.servers import CLIENT_CORE, RedisServer, RespqServer, Server, free_port
from tests.tls_certs import Certs, make_certs

CLIENTS = 50
PIPELINE = 16


def _tls_args(certs: Certs, port: int) -> list[str]:
    return [
        "--tls-port", str(port), "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca),
    ]


class TLSRespq(RespqServer):
    certs: Certs

    def argv(self) -> list[str]:
        self.port = self.port or free_port()  # a plaintext port too: readiness is checked over it
        self.tls_port = free_port()
        return [*super().argv(), *_tls_args(self.certs, self.tls_port)]


class TLSRedis(RedisServer):
    certs: Certs

    def argv(self) -> list[str]:
        self.tls_port = free_port()
        return [*super().argv(), *_tls_args(self.certs, self.tls_port)]


def negotiated(port: int, certs: Certs) -> str:
    """Protocol and cipher a default client (Python's, with the client certificate) gets."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        cipher = sock.cipher()
        return f"{sock.version()} {cipher[0] if cipher else '?'}"


def benchmark(port: int, requests: int, certs: Certs | None) -> float:
    argv = ["taskset", "-c", CLIENT_CORE, "redis-benchmark", "-p", str(port), "-c", str(CLIENTS), "-P",
            str(PIPELINE), "-n", str(requests), "--csv", "-t", "lpush"]
    if certs is not None:
        argv += ["--tls", "--cacert", str(certs.ca), "--cert", str(certs.client_cert), "--key", str(certs.client_key)]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True).stdout
    records = [record for record in csv.DictReader(io.StringIO(output)) if record.get("rps")]
    return float(records[-1]["rps"])


def run(kind: type[Server], policy: str, requests: int, certs: Certs, tls: bool) -> tuple[float, float, str]:
    """Requests per second, server CPU microseconds per request (steadier than the rate on a shared machine),
    and the negotiated protocol and cipher."""
    kind.certs = certs  # type: ignore[attr-defined]
    with kind(policy) as server:
        port = server.tls_port if tls else server.port  # type: ignore[attr-defined]
        benchmark(port, requests // 10, certs if tls else None)  # warm-up
        before = server.sample()
        rate = benchmark(port, requests, certs if tls else None)
        cpu = server.sample().cpu_since(before) / requests * 1e6
        return rate, cpu, negotiated(server.tls_port, certs)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__)
    parser.add_argument("--requests", type=int, default=400_000, help="LPUSH calls per measured run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy", default="always", choices=["always", "everysec", "no"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as directory:
        certs = make_certs(Path(directory))
        for tls in (True, False):
            rates: dict[str, list[float]] = {"respq": [], "redis": []}
            cpus: dict[str, list[float]] = {"respq": [], "redis": []}
            ciphers: dict[str, str] = {}
            for repeat in range(args.repeats):
                order = [("respq", TLSRespq), ("redis", TLSRedis)]
                for name, kind in order if repeat % 2 == 0 else order[::-1]:
                    rate, cpu, cipher = run(kind, args.policy, args.requests, certs, tls)
                    rates[name].append(round(rate))
                    cpus[name].append(round(cpu, 2))
                    ciphers[name] = cipher
            respq, redis = statistics.median(rates["respq"]), statistics.median(rates["redis"])
            label = "TLS" if tls else "plaintext"
            print(f"LPUSH P={PIPELINE} c={CLIENTS} {label}, appendfsync {args.policy}, median of {args.repeats}:")
            print(f"  respq {respq:,.0f}/s {rates['respq']}  redis {redis:,.0f}/s {rates['redis']}")
            print(f"  ratio respq/redis {respq / redis:.2f}x")
            print(f"  server CPU us/request: respq {cpus['respq']}  redis {cpus['redis']}")
            if tls:
                print(f"  negotiated: respq {ciphers['respq']}; redis {ciphers['redis']}")


if __name__ == "__main__":
    main()
