"""e2p: an English to Python code generator built on a small Transformer."""

__version__ = "0.1.0"
