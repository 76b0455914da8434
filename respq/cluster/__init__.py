"""Cluster mode with a static slot map: which node serves which of the 16384 hash slots, pushed from outside
(CLUSTERX SETNODES, as Kvrocks does) rather than agreed by a gossip bus. Nothing here knows RESP or Trio."""

from respq.cluster.keyslot import SLOTS, key_slot
from respq.cluster.slotmap import MapError, Node, SlotMap

__all__ = ["SLOTS", "MapError", "Node", "SlotMap", "key_slot"]
