"""Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, their shard-channel forms SSUBSCRIBE,
SUNSUBSCRIBE, SPUBLISH (which work without a cluster too), and PUBSUB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from respq.client import Client
from respq.commands.context import Context
from respq.commands.help import help_lines
from respq.commands.table import command, container
from respq.errors import CommandError
from respq.glob import compile_glob
from respq.pubsub import Channels, PubSub
from respq.replies import Push, Replies

G = "pubsub"
SSUBSCRIBE_DENY_BLOCKING = b"ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"
# What each confirmation's count counts: shard subscriptions are counted apart from channels and patterns.
_SHARD_CONFIRMATIONS = frozenset({b"ssubscribe", b"sunsubscribe"})


def _confirmation(client: Client, kind: bytes, name: bytes | None) -> Push:
    # Each (un)subscription is confirmed by its own reply: a push frame in RESP3, an array in RESP2.
    count = len(client.shard_channels) if kind in _SHARD_CONFIRMATIONS else client.global_subscriptions
    return Push([kind, name, count])


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


def _unsubscribe(client: Client, kind: bytes, names: list[bytes], channels: Channels) -> Any:
    """(S)UNSUBSCRIBE: the channels named, or every channel of that kind the client has."""
    return _each(client, kind, names or list(channels.of(client)), channels.unsubscribe)


def drop_shard_channels(pubsub: PubSub, gone: Callable[[bytes], bool]) -> None:
    """Cluster mode: the shard channels ``gone`` names (their slot left this node) lose their subscribers, each told
    by a ``sunsubscribe`` push, as Redis does when a slot is deleted from a node."""
    shard = pubsub.shard
    for channel in [channel for channel in shard.subscribers if gone(channel)]:
        for client in list(shard.subscribers.get(channel, {}).values()):
            shard.unsubscribe(client, channel)
            client.push(_confirmation(client, b"sunsubscribe", channel))


def _channel_list(channels: Channels, argv: list[bytes]) -> list[bytes]:
    """PUBSUB (SHARD)CHANNELS [pattern]: the channels of a kind that have subscribers."""
    if len(argv) > 3:
        raise _pubsub_arity_error(argv)
    names = list(channels.subscribers)
    if len(argv) == 3:
        match = compile_glob(argv[2])
        names = [name for name in names if match(name)]
    return names


def _numsub(channels: Channels, argv: list[bytes]) -> list[Any]:
    """PUBSUB (SHARD)NUMSUB [channel ...]: each channel with its number of subscribers of that kind."""
    reply: list[Any] = []
    for channel in argv[2:]:
        reply += [channel, channels.numsub(channel)]
    return reply


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
    return _each(ctx.client, b"subscribe", argv[1:], ctx.pubsub.plain.subscribe)


@command(
    "ssubscribe",
    -2,
    "pubsub noscript loading stale",
    (1, -1, 1),
    not_key=True,
    group=G,
    summary="Subscribes the connection to shard channels, whose SPUBLISH messages it then receives.",
    since="7.0.0",
    complexity="O(N) in the shard channels given",
)
def ssubscribe(ctx: Context, argv: list[bytes]) -> Any:
    if ctx.client.deny_blocking:  # in EXEC: unlike SUBSCRIBE, Redis makes no exception for transactions
        raise CommandError(SSUBSCRIBE_DENY_BLOCKING)
    return _each(ctx.client, b"ssubscribe", argv[1:], ctx.pubsub.shard.subscribe)


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
    return _unsubscribe(ctx.client, b"unsubscribe", argv[1:], ctx.pubsub.plain)


@command(
    "sunsubscribe",
    -1,
    "pubsub noscript loading stale",
    (1, -1, 1),
    not_key=True,
    group=G,
    summary="Cancels shard channel subscriptions: the ones named, or all of them.",
    since="7.0.0",
    complexity="O(N) in the shard channels named (or subscribed, if none is named)",
)
def sunsubscribe(ctx: Context, argv: list[bytes]) -> Any:
    return _unsubscribe(ctx.client, b"sunsubscribe", argv[1:], ctx.pubsub.shard)


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
    _to_replicas(ctx, argv)
    return ctx.pubsub.publish(argv[1], argv[2])


def _to_replicas(ctx: Context, argv: list[bytes]) -> None:
    """A message published on a master reaches its replicas' subscribers too: Redis propagates PUBLISH and SPUBLISH
    in the replication stream although they change no data."""
    replication = ctx.replication
    if replication.feeding and replication.master is None:
        replication.propagate(ctx.client.db, argv)


@command(
    "spublish",
    3,
    "pubsub loading stale fast",
    (1, 1, 1),
    not_key=True,
    group=G,
    summary="Sends a message to a shard channel's subscribers (patterns never match); replies how many received it.",
    since="7.0.0",
    complexity="O(N) in the subscribers of the shard channel",
)
def spublish(ctx: Context, argv: list[bytes]) -> Any:
    _to_replicas(ctx, argv)
    return ctx.pubsub.spublish(argv[1], argv[2])


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
    return _channel_list(ctx.pubsub.plain, argv)


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
    return _numsub(ctx.pubsub.plain, argv)


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
    summary="Lists the shard channels that have subscribers, optionally matching a pattern.",
    since="7.0.0",
    complexity="O(N) in the shard channels with subscribers",
)
def pubsub_shardchannels(ctx: Context, argv: list[bytes]) -> Any:
    return _channel_list(ctx.pubsub.shard, argv)


@command(
    "pubsub|shardnumsub",
    -2,
    "pubsub loading stale",
    group=G,
    summary="Reports the number of subscribers of each given shard channel.",
    since="7.0.0",
    complexity="O(N) in the shard channels given",
)
def pubsub_shardnumsub(ctx: Context, argv: list[bytes]) -> Any:
    return _numsub(ctx.pubsub.shard, argv)
