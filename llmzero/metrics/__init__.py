"""Canonical training metrics: names, the per-phase JSONL store, and compact summaries."""
