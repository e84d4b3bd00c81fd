"""Kept for `python -m e2p.benchmark`, which README.md names: the module is e2p.evaluation.benchmark."""

from .evaluation.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
