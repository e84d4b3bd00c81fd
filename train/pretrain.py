"""python -m train.pretrain --data CORPUS [--source PY_TARBALL] [--config pretrain] [--out artifacts/pretrained]

Pretrains the shipped model's shape on unlabelled Python (e2p.model.pretraining): every function of the
source (TheAlgorithms/Python by default) becomes a docstring-prompted pair and a denoising pair, over
the fine-tune's vocabulary (built from CORPUS's train split by the base config), so
`"init_from": "artifacts/pretrained"` in a training config starts `python -m train` from these
weights. Resumable: run it again after an interruption and it goes on from the last checkpoint in
--work-dir.

--pack-out FILE writes the encoded pairs and stops; --pack FILE trains from such a file with
neither the corpus nor the tokenizers (for a machine without spaCy, e.g. a GPU box).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"
SOURCE = "../shared/data/thealgorithms-python.tar.gz"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m train.pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data", help="the paired corpus: its train split gives the vocabulary, valid and test are held out"
    )
    p.add_argument("--source", default=SOURCE, help=f"folder or .tar.gz of .py files (default: {SOURCE})")
    p.add_argument("--config", default="pretrain", help=f"a preset in {CONFIGS} or a JSON path (default: pretrain)")
    p.add_argument("--out", default="artifacts/pretrained", help="folder for the pretrained weights")
    p.add_argument("--work-dir", default="runs/pretrain", help="checkpoints (default: runs/pretrain)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto (GPU when present)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's epoch limit")
    p.add_argument("--time-budget-min", type=float, default=None, help="override the config's time budget")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--pack-out", default=None, help="write the encoded pairs to this file and stop")
    p.add_argument("--pack", default=None, help="train from a file written by --pack-out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def load_config(name: str):
    """A pretraining preset: its `base` training config, with the preset's fields over it."""
    from e2p.errors import E2PError
    from e2p.model.training import TrainConfig

    path = Path(name)
    path = path if path.suffix == ".json" else CONFIGS / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise E2PError(f"cannot read pretraining config {path}: {err}") from None
    base = TrainConfig.load(CONFIGS / f"{data.pop('base', 'default')}.json")
    data.pop("description", None)
    return base, TrainConfig.from_dict({**asdict(base), **data, "init_from": ""})


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from e2p.answer.bundle import sha256_file
    from e2p.errors import E2PError
    from e2p.model.training import (
        PRETRAINED_INFO,
        PRETRAINED_VOCAB,
        PRETRAINED_WEIGHTS,
        Prepared,
        load_weights,
        resolve_device,
        run_training,
        save_weights,
        token_weights,
        valid_loss,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        stats: dict = {}
        licence = None  # a pack holds no licence: the command that wrote it kept none either
        if args.pack:
            from e2p.model.pretraining import load_pack

            prep, cfg, stats = load_pack(args.pack)
        else:
            if not args.data:
                raise E2PError("--data (the paired corpus) is needed unless --pack is given")
            from e2p.data.corpus import load_corpus
            from e2p.model.pretraining import pretrain_pairs, read_functions, save_pack
            from e2p.model.training import prepare

            base, cfg = load_config(args.config)
            corpus = load_corpus(args.data)
            fine = prepare(corpus, base)
            data = read_functions(args.source, fine.valid + fine.test, max_tokens=cfg.max_tgt)
            licence = data.licence
            pairs, counts = pretrain_pairs(data, cfg, fine.src_vocab, seed=cfg.seed)
            stats = {
                **data.stats,
                "pairs": counts,
                "source": Path(args.source).name,
                "source_sha256": sha256_file(args.source) if Path(args.source).is_file() else None,
                "corpus_sha256": sha256_file(args.data),
            }
            print(f"pretraining data: {json.dumps(stats)}", flush=True)
            prep = Prepared([], [], [], None, fine.src_vocab, fine.tgt_vocab, pairs, fine.valid_pairs)
            if args.pack_out:
                save_pack(args.pack_out, prep, cfg, stats)
                print(f"wrote {args.pack_out}: {len(pairs)} pairs")
                return 0
        if args.max_epochs is not None:
            cfg.max_epochs = args.max_epochs
        if args.time_budget_min is not None:
            cfg.time_budget_min = args.time_budget_min
        work, out = Path(args.work_dir), Path(args.out)
        if args.fresh:
            shutil.rmtree(work / "checkpoint", ignore_errors=True)
            (work / "best.safetensors").unlink(missing_ok=True)
        started = time.time()
        weights, device = token_weights(cfg, prep.tgt_vocab), resolve_device(args.device)

        def metric(model) -> float:  # keep the weights that best predict the corpus's valid code
            return -valid_loss(model, prep.valid_pairs, cfg, weights, device)

        result = run_training(
            prep,
            cfg,
            work,
            device=args.device,
            valid_metric=metric,
            log=lambda m: print(m, flush=True),
            progress=not args.quiet,
        )
        model, meta = load_weights(result["model"].cpu(), work / "best.safetensors"), result["meta"]
        out.mkdir(parents=True, exist_ok=True)
        save_weights(model, out / PRETRAINED_WEIGHTS, dtype=torch.float16)
        info = {
            "vocab_sha256": prep.src_vocab.digest(),
            "model": model.config.to_dict(),
            "config": asdict(cfg),
            "data": stats,
            "epochs": meta["epoch"],
            "best_epoch": meta["best_epoch"],
            "log": meta["log"],
            "training_seconds": round(meta["seconds"], 1),
            "this_call_seconds": round(time.time() - started, 1),
            "device": str(resolve_device(args.device)),
            "threads": torch.get_num_threads(),
        }
        (out / PRETRAINED_INFO).write_text(json.dumps(info, indent=1))
        prep.src_vocab.save(out / PRETRAINED_VOCAB)  # a run on another vocabulary maps its rows by token
        if licence is not None:
            (out / "LICENSE-source.md").write_text(licence)
        print(f"wrote {out} ({meta['epoch']} epochs, {meta['seconds']:.0f} s)")
    except E2PError as err:
        print(f"train.pretrain: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
