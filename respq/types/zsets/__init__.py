"""Sorted sets, delayed jobs and registries for arq, RQ, BullMQ and Celery: model.py (members in memory, journaled),
commands.py, errors.py (their error texts)."""
