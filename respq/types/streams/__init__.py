"""Streams and consumer groups: model.py (the durable stream), commands.py, errors.py (their error texts)."""
