"""Command line: ``respq serve [CONFIG_FILE] [--directive value ...]``, ``respq check DIR``, and the operator views
``respq stat`` / ``respq queues`` (respq.admin)."""

from __future__ import annotations

import argparse
import os
import sys

import trio

from respq import __version__


def _serve(argv: list[str]) -> int:
    from respq.acl import AclError
    from respq.config import ConfigError, directive_help, load_config
    from respq.errors import StartupError
    from respq.log import Logger
    from respq.server import Server

    if argv and argv[0] in ("-h", "--help"):  # only first, as redis-server: later it is a directive
        print(SERVE_USAGE)
        print("\n".join(directive_help()))
        return 0
    try:
        config = load_config(argv)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    log = Logger(config.loglevel, config.logfile)
    try:
        server = Server(config, log)
    except AclError as error:
        for line in str(error).splitlines():
            log.warning(line)
        return 1
    try:
        trio.run(server.run)
    except KeyboardInterrupt:
        return 0
    except StartupError as error:
        log.warning(error.message)
        return 1
    return 0


def _check(argv: list[str]) -> int:
    from respq.storage.check import check_directory
    from respq.types import REGISTRY

    parser = argparse.ArgumentParser(prog="respq check", description="Verify a data directory offline.")
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--storage", choices=("disk", "memory"), default="disk", help="the server's storage directive")
    args = parser.parse_args(argv)
    if args.storage == "memory":
        print(CHECK_MEMORY, file=sys.stderr)
        return 2
    if args.dir is None:
        parser.error("the data directory to check is required")
    if not os.path.isdir(args.dir):
        print(f"{args.dir}: no such data directory", file=sys.stderr)
        return 2
    problems = check_directory(args.dir, REGISTRY)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.dir}")
        return 1
    print(f"{args.dir}: no problems found")
    return 0


CHECK_MEMORY = "respq check: storage memory writes nothing to disk, so there is no data directory to check"

USAGE = """usage: respq serve [CONFIG_FILE] [--directive value ...]
       respq serve --help   (its options and directives)
       respq check DIR | respq check --storage memory (refused: nothing on disk)
       respq stat [-h host] [-p port] [-a password] [--user name] [-i seconds] [--lines N]
       respq queues [-h host] [-p port] [-a password] [--user name] [--sort depth|age|lag] [--count N]
       respq cluster create HOST:PORT [HOST:PORT ...] [-a password] [--user name]
       respq cluster move-slot SLOT HOST:PORT [-a password] [--user name] [--pause-ms N]
       respq --version"""

# Shaped after redis-server's usage.
SERVE_USAGE = """Usage: respq serve [/path/to/respq.conf] [--directive value ...] [-]
       respq serve - (read config from stdin)
       respq serve -h or --help
       respq check DIR (verify a data directory offline)
       respq serve --storage memory (keep everything in memory: nothing written to disk)
       respq -v or --version

Examples:
       respq serve (serve on 127.0.0.1:6379 with the data in ./respq-data)
       respq serve /etc/respq.conf
       respq serve --port 7777 --dir /var/lib/respq
       respq serve /etc/respq.conf --loglevel verbose
       echo 'appendfsync everysec' | respq serve -
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-v", "--version"):
        print(f"respq {__version__}")
        return 0
    if args[0] == "serve":
        return _serve(args[1:])
    if args[0] == "check":
        return _check(args[1:])
    if args[0] in ("stat", "queues"):
        from respq.admin import run

        return run(args[0], args[1:])
    if args[0] == "cluster":
        from respq import cluster_admin

        return cluster_admin.run(args[1:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
