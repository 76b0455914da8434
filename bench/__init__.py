"""Side-by-side benchmark of respq against Debian's redis-server: `python -m bench --help`."""
