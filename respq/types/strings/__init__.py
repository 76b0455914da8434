"""Strings: model.py (the value held inline, journaled), commands.py, errors.py (their error texts)."""
