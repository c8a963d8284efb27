"""Where phases run: the executor seam (base.py) and its implementations (local.py)."""
