"""Kept for tools that import the old path: the module is e2p.answer.generator."""

from .answer.generator import GenerationResult, Generator, set_threads

__all__ = ["GenerationResult", "Generator", "set_threads"]
