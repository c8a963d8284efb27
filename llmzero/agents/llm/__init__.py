"""LLM agents (proposer, early stopper, error analyzer) on Claude or any litellm provider."""
