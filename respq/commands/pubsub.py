"""Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from respq.client import Client
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.replies import Push, Replies

G = "pubsub"


def _confirmation(client: Client, kind: bytes, name: bytes | None) -> Push:
    # Each (un)subscription is confirmed by its own reply: a push frame in RESP3, an array in RESP2.
    return Push([kind, name, client.subscriptions])


def _each(client: Client, kind: bytes, names: list[bytes], change: Callable[[Client, bytes], object]) -> Any:
    """Applies a (un)subscription per name, each confirmed separately; with no names at all (unsubscribing while
    subscribed to nothing) Redis still confirms once, naming nothing."""
    if not names:
        return _confirmation(client, kind, None)
    confirmations = []
    for name in names:
        change(client, name)
        confirmations.append(_confirmation(client, kind, name))
    return Replies(tuple(confirmations))


@command(
    "subscribe",
    -2,
    "pubsub noscript loading stale",
    group=G,
    summary="Subscribes the connection to channels, whose messages it then receives.",
    since="2.0.0",
    complexity="O(N) in the channels given",
)
def subscribe(ctx: Context, argv: list[bytes]) -> Any:
    return _each(ctx.client, b"subscribe", argv[1:], ctx.pubsub.subscribe)


@command(
    "psubscribe",
    -2,
    "pubsub noscript loading stale",
    group=G,
    summary="Subscribes the connection to every channel matching glob-style patterns.",
    since="2.0.0",
    complexity="O(N) in the patterns given",
)
def psubscribe(ctx: Context, argv: list[bytes]) -> Any:
    return _each(ctx.client, b"psubscribe", argv[1:], ctx.pubsub.psubscribe)


@command(
    "unsubscribe",
    -1,
    "pubsub noscript loading stale",
    group=G,
    summary="Cancels channel subscriptions: the ones named, or all of them.",
    since="2.0.0",
    complexity="O(N) in the channels named (or subscribed, if none is named)",
)
def unsubscribe(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    return _each(client, b"unsubscribe", argv[1:] or list(client.channels), ctx.pubsub.unsubscribe)


@command(
    "punsubscribe",
    -1,
    "pubsub noscript loading stale",
    group=G,
    summary="Cancels pattern subscriptions: the ones named, or all of them.",
    since="2.0.0",
    complexity="O(N) in the patterns named (or subscribed, if none is named)",
)
def punsubscribe(ctx: Context, argv: list[bytes]) -> Any:
    client = ctx.client
    return _each(client, b"punsubscribe", argv[1:] or list(client.patterns), ctx.pubsub.punsubscribe)


@command(
    "publish",
    3,
    "pubsub loading stale fast",
    group=G,
    summary="Sends a message to a channel's subscribers; replies how many received it.",
    since="2.0.0",
    complexity="O(N+M): N subscribers of the channel, M patterns subscribed to",
)
def publish(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.cluster is not None:  # delivered cluster-wide; the reply counts this node's receivers, as in Redis
        ctx.server.forward_publish(argv[1], argv[2])
    return ctx.pubsub.publish(argv[1], argv[2])


container("pubsub", group=G, summary="Groups the subcommands that report on publish/subscribe state.", since="2.8.0")


def _pubsub_arity_error(argv: list[bytes]) -> CommandError:
    return CommandError(b"ERR unknown subcommand or wrong number of arguments for '" + argv[1] + b"'. Try PUBSUB HELP.")


@command(
    "pubsub|channels",
    -2,
    "pubsub loading stale",
    group=G,
    summary="Lists the channels that have subscribers, optionally matching a pattern.",
    since="2.8.0",
    complexity="O(N) in the channels with subscribers",
)
def pubsub_channels(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise _pubsub_arity_error(argv)
    channels = list(ctx.pubsub.channels)
    if len(argv) == 3:
        match = compile_glob(argv[2])
        channels = [channel for channel in channels if match(channel)]
    return channels


@command(
    "pubsub|numsub",
    -2,
    "pubsub loading stale",
    group=G,
    summary="Reports the number of subscribers of each given channel.",
    since="2.8.0",
    complexity="O(N) in the channels given",
)
def pubsub_numsub(ctx: Context, argv: list[bytes]) -> Any:
    pubsub = ctx.pubsub
    reply: list[Any] = []
    for channel in argv[2:]:
        reply += [channel, pubsub.numsub(channel)]
    return reply


@command(
    "pubsub|numpat",
    2,
    "pubsub loading stale",
    group=G,
    summary="Reports how many distinct patterns clients are subscribed to.",
    since="2.8.0",
)
def pubsub_numpat(ctx: Context, argv: list[bytes]) -> Any:
    return len(ctx.pubsub.patterns)


@command(
    "pubsub|help",
    2,
    "loading stale",
    group=G,
    summary="Lists the PUBSUB subcommands with a line or two on each.",
    since="6.2.0",
)
def pubsub_help(ctx: Context, argv: list[bytes]) -> Any:
    return help_lines(
        b"PUBSUB",
        [
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    )


@command(
    "pubsub|shardchannels",
    -2,
    "pubsub loading stale",
    group=G,
    summary="Lists active shard channels: always none, since sharding needs a cluster.",
    since="7.0.0",
)
def pubsub_shardchannels(ctx: Context, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise _pubsub_arity_error(argv)
    return []


@command(
    "pubsub|shardnumsub",
    -2,
    "pubsub loading stale",
    group=G,
    summary="Reports zero subscribers for each shard channel given, since sharding needs a cluster.",
    since="7.0.0",
    complexity="O(N) in the channels given",
)
def pubsub_shardnumsub(ctx: Context, argv: list[bytes]) -> Any:
    reply: list[Any] = []
    for channel in argv[2:]:
        reply += [channel, 0]
    return reply
