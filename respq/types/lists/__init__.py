"""Lists: the classic queue type (model.py: the durable list; its commands live in respq/commands/lists.py)."""
