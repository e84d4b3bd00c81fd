"""Lever 4's A/B: the shipped recipe fine-tuned with and without the pretrained weights, all else equal.

python benchmarks/pretrain_ab.py pack --out .devpack
    writes ft_plain.json.gz (default recipe) and ft_pre.json.gz (the same, from artifacts/pretrained)
python -m train.pretrain --pack .devpack/ft_ARM.json.gz --device auto --work-dir runs/ab_ARM --out runs/ab_ARM/weights
    trains one arm from its pack (no corpus or spaCy needed: a GPU box will do); keeps the epoch
    with the lowest valid loss
python benchmarks/pretrain_ab.py import runs/ab_ARM/weights runs/ab_ARM
python -m train --config default --work-dir runs/ab_ARM --out runs/ab_ARM/artifact --export-only --no-eval
python -m e2p evaluate --split valid --artifacts runs/ab_ARM/artifact --rerank score --pool 0 --no-fallback
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from e2p.constants import CORPUS_PATH  # noqa: E402


def pack(out: Path, data: str, pretrained: str) -> None:
    from e2p.data.corpus import load_corpus
    from e2p.model.pretraining import save_pack
    from e2p.model.training import TrainConfig, prepare

    base = TrainConfig.load(REPO / "train/configs/default.json")
    base = dataclasses.replace(base, init_from="")
    prep = prepare(load_corpus(data), base)
    out.mkdir(parents=True, exist_ok=True)
    save_pack(out / "ft_plain.json.gz", prep, base, {"arm": "default recipe, no pretraining"})
    with_pre = dataclasses.replace(base, init_from=pretrained)
    save_pack(out / "ft_pre.json.gz", prep, with_pre, {"arm": f"default recipe from {pretrained}"})
    print(f"wrote {out}/ft_plain.json.gz and {out}/ft_pre.json.gz ({len(prep.train_pairs)} train pairs)")


def import_run(weights: Path, work: Path) -> None:
    """train.pretrain's output folder -> a work dir that `python -m train --export-only` reads."""
    info = json.loads((weights / "pretrained.json").read_text())
    (work / "checkpoint").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights / "weights.safetensors", work / "best.safetensors")
    meta = {"epoch": info["epochs"], "best_epoch": info["best_epoch"], "log": info["log"]}
    meta["seconds"] = info["training_seconds"]
    (work / "checkpoint" / "meta.json").write_text(json.dumps(meta))
    print(
        f"{work}: best epoch {info['best_epoch']} of {info['epochs']}, {info['training_seconds']} s on {info['device']}"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("--out", default=".devpack")
    a.add_argument("--data", default=str(REPO / CORPUS_PATH))
    a.add_argument("--pretrained", default="artifacts/pretrained")
    b = sub.add_parser("import")
    b.add_argument("weights")
    b.add_argument("work")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(Path(args.out), args.data, args.pretrained)
    else:
        import_run(Path(args.weights), Path(args.work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
