"""LLMZero: discover adaptive multi-phase RL post-training strategies with a tree search guided by agents."""

__version__ = "0.1.0"
