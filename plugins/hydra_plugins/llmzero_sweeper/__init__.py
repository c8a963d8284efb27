"""The llmzero Hydra sweeper: `python -m llmzero -m hydra/sweeper=llmzero [overrides]` runs the search (adaptive,
grid or random, `sweeper.mode`) with each phase a job of the configured Hydra launcher."""
