"""LLMZero: discover adaptive multi-phase RL post-training strategies with a tree search guided by agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmzero")  # written once, in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
