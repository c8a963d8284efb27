"""Models: the offline tokenizer, the `builtin:tiny` Qwen3, path resolution, loading and greedy decoding."""

from .loading import greedy_complete, load_model_and_tokenizer
from .resolve import resolve_model_path
from .tiny import BUILDER_VERSION, DEFAULT_OPTIONS, build_tiny_model, ensure_tiny_model
from .tokenizer import build_tokenizer

__all__ = [
    "BUILDER_VERSION",
    "DEFAULT_OPTIONS",
    "build_tiny_model",
    "build_tokenizer",
    "ensure_tiny_model",
    "greedy_complete",
    "load_model_and_tokenizer",
    "resolve_model_path",
]
