"""Policies that propose alternatives: local transformers models or an OpenAI-compatible server."""
