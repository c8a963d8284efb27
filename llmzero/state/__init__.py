"""The search directory on disk: atomic journal, lock, per-node files."""
