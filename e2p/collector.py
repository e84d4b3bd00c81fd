"""Python's cycle collector, paused while a process loads the libraries and the model.

Importing torch and spaCy and loading a model allocate about a million objects that live as long as
the process. The collector walks every tracked object each time it runs a full collection, and it
runs several while they are being allocated: a fresh `python -m e2p generate` spent about 0.8 s of
its 4 s in them (measured with the collector on and off, same process start). Paused while loading,
then frozen (`gc.freeze`: kept out of every later collection), they cost nothing after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loading(collect: bool = False) -> Iterator[None]:
    """The collector off inside; after, what was loaded is frozen out of it and it is on again if it
    was before. `collect`: one full collection first, for a process that runs for long (the app's
    server), so that loading's own garbage is not frozen with the rest."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.collect()
        gc.freeze()
        if was_on:
            gc.enable()
