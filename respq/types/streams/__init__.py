"""Streams and consumer groups (model.py: the durable stream; its commands live in respq/commands/streams.py)."""
