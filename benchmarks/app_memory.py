"""Server memory with every shipped model loaded, as the app holds them (issue: compare models).

    python benchmarks/app_memory.py [--artifacts artifacts]

Imports what the app server imports, loads each shipped model (`e2p.views.compare.shipped_models`),
has it answer one prompt, and prints the resident memory after each step, then the peak.
"""

from __future__ import annotations

import argparse
import resource


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    args = parser.parse_args()
    import torch  # noqa: F401  (the baseline: an interpreter with torch)

    print(f"python + torch: {rss_mb():.0f} MB")
    import streamlit  # noqa: F401

    from e2p.answer.generator import Generator
    from e2p.views.compare import shipped_models

    print(f"+ streamlit and e2p: {rss_mb():.0f} MB")
    held = []
    for model in shipped_models(args.artifacts):
        generator = Generator(model.folder)
        generator.generate("write a python function to add two numbers")
        held.append(generator)
        print(f"+ {model.name} loaded, one answer: {rss_mb():.0f} MB")
    print(f"peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
