"""Options measured and not kept (docs/experiments.md) that configs written before their removal
still carry: an artifact's decoding settings, its features, a run's training config."""

from __future__ import annotations

from collections.abc import Callable


def drop_retired(values: dict, retired: dict, refuse: Callable[[str, object], Exception]) -> dict:
    """`values` without the options named in `retired`. Each maps to the value at which dropping the
    option changes nothing (a tuple: any of those; None: any value at all); at another value the
    config meant something today's code cannot do, and `refuse(name, value)` is raised."""
    kept = dict(values)
    for name, neutral in retired.items():
        if name not in kept:
            continue
        value = kept.pop(name)
        if neutral is None or value == neutral or (isinstance(neutral, tuple) and value in neutral):
            continue
        raise refuse(name, value)
    return kept
