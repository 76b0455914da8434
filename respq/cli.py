"""Command line: ``respq serve [CONFIG_FILE] [--directive value ...]`` and ``respq check DIR``."""

from __future__ import annotations

import argparse
import sys

import trio

from respq import __version__


def _serve(argv: list[str]) -> int:
    from respq.config import ConfigError, load_config
    from respq.log import Logger
    from respq.server import Server

    try:
        config = load_config(argv)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    log = Logger(config.loglevel, config.logfile)
    server = Server(config, log)
    try:
        trio.run(server.run)
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        log.warning(f"Fatal: {error}")
        return 1
    return 0


def _check(argv: list[str]) -> int:
    from respq.storage.check import check_directory
    from respq.types import REGISTRY

    parser = argparse.ArgumentParser(prog="respq check", description="Verify a data directory offline.")
    parser.add_argument("dir")
    args = parser.parse_args(argv)
    problems = check_directory(args.dir, REGISTRY)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.dir}")
        return 1
    print(f"{args.dir}: no problems found")
    return 0


USAGE = """usage: respq serve [CONFIG_FILE] [--directive value ...]
       respq check DIR
       respq --version"""


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
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
