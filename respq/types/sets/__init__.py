"""Sets, queue names and bindings for RQ, Celery and kombu: model.py (members in memory, journaled), commands.py,
errors.py (their error texts)."""
