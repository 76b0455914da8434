"""The slot map: the nodes of the cluster, the slot ranges each serves, the map's version and which node is this one.

It arrives in Kvrocks's CLUSTERX SETNODES text, one node a line::

    <40-char id> <host> <port> master - <slot or start-end> ...

with Kvrocks's version rules (a lower version is refused, the same one is a no-op unless forced; SETSLOT must bring
exactly the next version). ``slave`` lines are refused until respq replicates. The server owns the map's file: it
is rewritten atomically (temporary file, fsync, rename, directory fsync) after every change and read at start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from respq.cluster.keyslot import SLOTS, key_slot

NODE_ID_LENGTH = 40
# Kvrocks's texts for a map it refuses (replied as ERR <text>).
INVALID_NODE_ID = "Invalid cluster node id"
INVALID_VERSION = "Invalid cluster version"
INVALID_NODES_INFO = "Invalid cluster nodes info"
INVALID_PORT = "Invalid cluster node port"
INVALID_ROLE = "Invalid cluster node role"
SLOT_OUT_OF_RANGE = "Slot is out of range"
SLOT_OVERLAPPED = "Slot distribution is overlapped"
NO_SUCH_NODE = "No this node in the cluster"
NO_REPLICAS = "replica nodes are not supported yet: respq has no replication"
# Redis's redirects (clusterRedirectClient) for a keyed command this node does not serve.
CROSSSLOT = b"CROSSSLOT Keys in request don't hash to the same slot"
CLUSTERDOWN_UNBOUND = b"CLUSTERDOWN Hash slot not served"
CLUSTERDOWN_STATE = b"CLUSTERDOWN The cluster is down"
_FILE_HEADER = "# respq cluster map: written by the server, never edit it by hand"
_WILDCARD_BINDS = frozenset({"*", "0.0.0.0", "::", "-::*", "::*"})


class MapError(Exception):
    """A map, a version or a node id refused; ``message`` is the reply's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True, eq=False)
class Node:
    id: str
    host: str
    port: int
    ranges: list[tuple[int, int]] = field(default_factory=list)  # inclusive, ascending, merged

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.ranges)


def _slot(text: str) -> int:
    if not text.isdigit() or int(text) >= SLOTS:
        raise MapError(SLOT_OUT_OF_RANGE)
    return int(text)


def parse_nodes(text: str) -> tuple[dict[str, Node], list[Node | None]]:
    """The nodes a SETNODES text lists (in its order) and the owner of every slot."""
    nodes: dict[str, Node] = {}
    owners: list[Node | None] = [None] * SLOTS
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise MapError(INVALID_NODES_INFO)
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            raise MapError(INVALID_NODES_INFO)
        node_id, host, port_text, role, master = fields[:5]
        if len(node_id) != NODE_ID_LENGTH:
            raise MapError(INVALID_NODE_ID)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise MapError(INVALID_PORT)
        role = role.lower()
        if role in ("slave", "replica"):
            raise MapError(NO_REPLICAS)
        if role != "master":
            raise MapError(INVALID_ROLE)
        if master != "-":
            raise MapError(INVALID_NODE_ID)
        if node_id in nodes:
            raise MapError(INVALID_NODES_INFO)
        node = nodes[node_id] = Node(node_id, host, int(port_text))
        for item in fields[5:]:
            bounds = item.split("-")
            if len(bounds) == 1:
                start = end = _slot(bounds[0])
            elif len(bounds) == 2:
                start, end = _slot(bounds[0]), _slot(bounds[1])
                if start >= end:
                    raise MapError(SLOT_OUT_OF_RANGE)
            else:
                raise MapError(SLOT_OUT_OF_RANGE)
            for slot in range(start, end + 1):
                if owners[slot] is not None:
                    raise MapError(SLOT_OVERLAPPED)
                owners[slot] = node
    _set_ranges(nodes, owners)
    return nodes, owners


def _set_ranges(nodes: dict[str, Node], owners: list[Node | None]) -> None:
    """Each node's ranges, recomputed from the owners (merging adjacent ones, as CLUSTER NODES prints them)."""
    for node in nodes.values():
        node.ranges = []
    start = 0
    for slot in range(1, SLOTS + 1):
        if slot == SLOTS or owners[slot] is not owners[start]:
            owner = owners[start]
            if owner is not None:
                owner.ranges.append((start, slot - 1))
            start = slot


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    return " ".join(str(start) if start == end else f"{start}-{end}" for start, end in ranges)


class SlotMap:
    """The map this node serves by. ``version`` is -1 until a map arrives; ``myself`` is None until this node is
    named in it (by SETNODEID, or found by its port and bind address)."""

    def __init__(self, path: str | None, port: int = 0, binds: list[str] | None = None) -> None:
        self.path = path  # the map's file; None keeps it in memory only
        self.port = port
        self.binds = list(binds or [])
        self.version = -1
        self.myid = ""  # from SETNODEID or the file; else found in every new map
        self.nodes: dict[str, Node] = {}
        self.owners: list[Node | None] = [None] * SLOTS
        self.myself: Node | None = None
        self.assigned = 0
        self.full_coverage = True  # cluster-require-full-coverage: keyed commands need every slot assigned
        # Slots being copied here from their owner (CLUSTERX IMPORT): a command after ASKING may use them. Not kept
        # in the file: a restart ends an import, and the copy is started again.
        self.importing: set[int] = set()
        # 1 for each slot whose keys are served here now: the one test a command on a served key costs.
        self.local = bytearray(SLOTS)

    def update_local(self) -> None:
        """Recomputes ``local`` after a change of the map or of cluster-require-full-coverage."""
        usable = self.assigned == SLOTS or not self.full_coverage
        myself = self.myself
        self.local = bytearray(int(usable and owner is myself and owner is not None) for owner in self.owners)

    def route(self, keys: list[bytes], *, shard_pubsub: bool = False, asking: bool = False) -> bytes | None:
        """Why a command naming ``keys`` may not run here (the error Redis's getNodeByQuery picks), or None.
        ``shard_pubsub`` (shard channels among the keys) runs while the cluster is down, as Redis's default
        cluster-allow-pubsubshard-when-down yes lets it; ``asking`` (the client sent ASKING) reaches an imported
        slot."""
        slot = -1
        owners = self.owners
        for key in keys:
            this = key_slot(key)
            if this != slot:
                if slot >= 0:
                    return CROSSSLOT
                slot = this
                if owners[slot] is None:
                    return CLUSTERDOWN_UNBOUND
        if slot < 0 or self.local[slot] or (asking and slot in self.importing):
            return None
        return self.redirect(slot, shard_pubsub=shard_pubsub)

    def redirect(self, slot: int, *, shard_pubsub: bool = False) -> bytes | None:
        """Why a key of ``slot`` is not served here, or None when it is."""
        owner = self.owners[slot]
        if owner is None:
            return CLUSTERDOWN_UNBOUND
        if self.assigned != SLOTS and self.full_coverage and not shard_pubsub:
            return CLUSTERDOWN_STATE
        if owner is not self.myself:
            return b"MOVED %d %s:%d" % (slot, owner.host.encode(), owner.port)
        return None

    # ---- queries ------------------------------------------------------------------------------------------------
    def owner(self, slot: int) -> Node | None:
        return self.owners[slot]

    def serves(self, slot: int) -> bool:
        owner = self.owners[slot]
        return owner is not None and owner is self.myself

    @property
    def covered(self) -> bool:
        """Every slot has an owner: Redis's cluster_state ok."""
        return self.assigned == SLOTS

    @property
    def size(self) -> int:
        """Masters serving at least one slot (CLUSTER INFO cluster_size)."""
        return sum(1 for node in self.nodes.values() if node.ranges)

    def node_lines(self) -> str:
        """The map in SETNODES text (what the file keeps)."""
        return "".join(
            f"{node.id} {node.host} {node.port} master -{' ' if node.ranges else ''}{format_ranges(node.ranges)}\n"
            for node in self.nodes.values()
        )

    # ---- changes (Kvrocks's rules) ------------------------------------------------------------------------------
    def set_nodes(self, text: str, version: int, force: bool = False) -> bool:
        """CLUSTERX SETNODES; False when the map is unchanged (the same version, not forced)."""
        if version < 0:
            raise MapError(INVALID_VERSION)
        if not force:
            if version < self.version:
                raise MapError(INVALID_VERSION)
            if version == self.version:
                return False
        nodes, owners = parse_nodes(text)
        self._install(nodes, owners, version, find_myself=not self.myid or force)
        return True

    def set_node_id(self, node_id: str) -> None:
        """CLUSTERX SETNODEID: which node of the map (this one or a later one) this node is."""
        if len(node_id) != NODE_ID_LENGTH:
            raise MapError(INVALID_NODE_ID)
        self.myid = node_id
        self.myself = self.nodes.get(node_id)
        self.update_local()
        self.save()

    def set_slot(self, slot: int, node_id: str, version: int) -> None:
        """CLUSTERX SETSLOT <slot> NODE <id> <version>: the version must be exactly the current one plus one."""
        if version <= 0 or version != self.version + 1:
            raise MapError(INVALID_VERSION)
        if len(node_id) != NODE_ID_LENGTH:
            raise MapError(INVALID_NODE_ID)
        node = self.nodes.get(node_id)
        if node is None:
            raise MapError(NO_SUCH_NODE)
        owners = list(self.owners)
        owners[slot] = node
        self._install(self.nodes, owners, version, find_myself=False)

    def _install(self, nodes: dict[str, Node], owners: list[Node | None], version: int, *, find_myself: bool) -> None:
        _set_ranges(nodes, owners)
        self.nodes, self.owners, self.version = nodes, owners, version
        self.assigned = SLOTS - owners.count(None)
        if find_myself:
            found = next((node for node in nodes.values() if self.is_me(node)), None)
            if found is not None:
                self.myid = found.id
        self.myself = nodes.get(self.myid)
        self.update_local()
        self.save()

    def is_me(self, node: Node) -> bool:
        """The node has this node's port and one of its bind addresses (any address with a wildcard bind)."""
        if node.port != self.port:
            return False
        return node.host in self.binds or any(bind in _WILDCARD_BINDS for bind in self.binds)

    # ---- the file -----------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Writes the map to its file so that the change survives a crash at any point: the old file or the new."""
        if self.path is None:
            return
        text = f"{_FILE_HEADER}\nversion {self.version}\nid {self.myid or '-'}\n"
        text += "".join(f"node {line}\n" for line in self.node_lines().splitlines())
        temporary = self.path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, self.path)
        directory = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def load(self) -> None:
        """Reads the map the file keeps (none yet when there is no file). Raises MapError for a damaged file."""
        if self.path is None or not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as file:
            lines = file.read().splitlines()
        version, myid, node_lines = -1, "", []
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "version":
                if not rest.lstrip("-").isdigit():
                    raise MapError(f"{self.path}: {INVALID_VERSION}")
                version = int(rest)
            elif word == "id":
                myid = "" if rest == "-" else rest
            elif word == "node":
                node_lines.append(rest)
            else:
                raise MapError(f"{self.path}: unknown line {line!r}")
        self.myid = myid
        if version >= 0 and node_lines:
            path, self.path = self.path, None  # what was just read needs no rewrite
            try:
                self.set_nodes("\n".join(node_lines), version, force=True)
            finally:
                self.path = path
            if myid:  # force looked for this node by address: the id the file names wins
                self.myid = myid
                self.myself = self.nodes.get(myid)
                self.update_local()
