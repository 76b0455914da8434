"""Lists, the classic queue type: model.py (the durable list), commands.py, errors.py (their error texts)."""
