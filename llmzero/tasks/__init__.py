"""Verifiable tasks: data splits, prompts and rewards."""
