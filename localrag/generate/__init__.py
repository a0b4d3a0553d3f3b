"""Generators: llama.cpp, OpenAI-compatible HTTP, extractive, and the fallback chain."""
