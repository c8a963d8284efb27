"""trainer=verl: GRPO + LoRA phases through verl (backend.py); verl is an extra, `pip install 'llmzero[verl]'`."""
