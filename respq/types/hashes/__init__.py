"""Hashes, job records for RQ, Sidekiq, huey and BullMQ: model.py (fields in memory, journaled), commands.py,
errors.py (their error texts)."""
