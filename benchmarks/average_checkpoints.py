"""Checkpoint averaging after the fact: an artifact folder whose weights are the mean of several
weight files of one training run (the Transformer paper averaged its last checkpoints), for the
decoding sweep to score beside the artifact it copies.

    python benchmarks/average_checkpoints.py --artifacts runs/full18/artifacts \
        --weights runs/full18/run/best.safetensors runs/full18/run/checkpoint/state.safetensors \
        --out runs/avg_full18_art
    python benchmarks/decoding_sweep.py --split valid --beam 5 --follow 5 --examples 2 --rerank run \
        --artifacts runs/avg_full18_art

A weight file is a `best.safetensors` or a training checkpoint's `state.safetensors` (its weight
average where the run kept one, else its model tensors). The copy keeps everything of
`--artifacts` but the weights, with a new manifest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from e2p.artifact.bundle import read_manifest, verify, write_manifest
from e2p.errors import E2PError
from e2p.model.training import kept_weights

WEIGHTS = "weights.safetensors"


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise E2PError(f"{path} is not a safetensors weight file: {err}") from None


def model_tensors(path: Path) -> dict[str, torch.Tensor]:
    return kept_weights(read_weights(path))


def average(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The elementwise mean of the weight files, which must hold the same tensors."""
    states = [model_tensors(p) for p in paths]
    names = set(states[0])
    for path, state in zip(paths[1:], states[1:]):
        if set(state) != names or any(state[k].shape != states[0][k].shape for k in names):
            raise E2PError(f"{path} does not hold the same tensors as {paths[0]}")
    return {k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", required=True, help="the artifact folder to copy (vocabularies, config, ranker)")
    p.add_argument("--weights", nargs="+", required=True, help="two or more weight files of one run")
    p.add_argument("--out", required=True, help="the new artifact folder (must not exist)")
    args = p.parse_args(argv)
    try:
        src, out = Path(args.artifacts), Path(args.out)
        verify(src)
        if len(args.weights) < 2:
            raise E2PError("averaging needs two or more weight files")
        if out.exists():
            raise E2PError(f"{out} exists: name a new folder")
        mean = average([Path(w) for w in args.weights])
        shipped = read_weights(src / WEIGHTS)
        if set(shipped) != set(mean) or any(mean[k].shape != v.shape for k, v in shipped.items()):
            raise E2PError(f"the weight files do not fit the model of {src}")
        shutil.copytree(src, out)
        save_file({k: v.to(shipped[k].dtype).contiguous() for k, v in mean.items()}, str(out / WEIGHTS))
        info = {k: v for k, v in read_manifest(src).items() if k != "files"}
        info["averaged_from"] = [str(w) for w in args.weights]
        write_manifest(out, info)
    except (E2PError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{out}: the mean of {len(args.weights)} weight files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
