"""`trainer=trl`: real single-machine GRPO with LoRA through TRL's GRPOTrainer (see backend.py)."""

from .backend import TRLTrainer

__all__ = ["TRLTrainer"]
