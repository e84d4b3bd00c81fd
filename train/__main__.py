"""python -m train --data CORPUS [--config NAME|PATH] [--out DIR] [--device auto]

Thin over e2p: read the corpus, prepare sequences, train with checkpoints (run it again after an
interruption and it resumes), then build the artifact folder in steps (e2p.artifact.export): write the model's
files, fit the ranker, evaluate on the test split (dev for CoNaLa, `"split": "conala"`: metrics and
samples; --no-eval skips it), in
runs/<config>/artifacts unless --out says otherwise (`--out artifacts` replaces the shipped model).
`--evaluate-only --out DIR` re-evaluates a trained artifact after a change of its answer policy only.
Under `torchrun --nproc_per_node=N -m train ...` it trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="corpus: the capstone text format, or .jsonl with prompt/code")
    p.add_argument(
        "--config",
        default="default",
        help=f"a preset in {CONFIGS} (default, original, tiny; ablations/ablate_no_copy and the like) "
        "or a JSON path",
    )
    p.add_argument(
        "--out",
        default=None,
        help="artifact folder to write (default: <work-dir>/artifacts, i.e. runs/<config>/artifacts); "
        "an existing one must be an artifact folder, and only the files its manifest lists are replaced",
    )
    p.add_argument("--work-dir", default=None, help="checkpoints and logs (default: runs/<config>)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto (GPU when present)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument("--no-eval", action="store_true", help="skip the test evaluation and samples")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: write --out from the best checkpoint in --work-dir "
        "(e.g. after changing decoding settings)",
    )
    p.add_argument(
        "--evaluate-only",
        action="store_true",
        help="skip training and writing the model: give the artifact in --out the config's answer policy "
        '(its "policy" section: decoding, answer choice, example_pool), refit the ranker and evaluate it again',
    )
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's epoch limit")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: the config's threads, else all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def config_path(name: str) -> Path:
    """A preset's file (`default`, `ablations/ablate_no_copy`: under train/configs) or, ending in .json, a path."""
    path = Path(name)
    return path if path.suffix == ".json" else CONFIGS / f"{name}.json"


def finished_run(prep, cfg, work: Path) -> dict:
    """The model and training record of a run that already ended, for --export-only."""
    import json

    from e2p.errors import E2PError
    from e2p.model.transformer import Seq2Seq

    meta_path, best = work / "checkpoint" / "meta.json", work / "best.safetensors"
    if not meta_path.is_file() or not best.is_file():
        raise E2PError(f"no finished run in {work}: train first (without --export-only)")
    meta = json.loads(meta_path.read_text())
    return {"model": Seq2Seq(cfg.model_config(len(prep.src_vocab), len(prep.tgt_vocab))), "meta": meta}


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    args = parse_args(argv)
    import shutil

    import torch
    import torch.distributed as dist

    from e2p.answer.bundle import replaceable_files
    from e2p.artifact.export import (
        evaluate_artifact,
        fit_ranker_step,
        load_preset,
        reconfigure_artifact,
        write_artifact,
    )
    from e2p.data.corpus import load_corpus
    from e2p.errors import E2PError
    from e2p.evaluation.report import bleu_metric
    from e2p.model.training import prepare, run_training

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    try:
        path = config_path(args.config)
        if not path.is_file():
            raise E2PError(f"no training config {args.config!r}: expected a preset in {CONFIGS} or a .json file")
        cfg, policy = load_preset(path)
        if args.threads or cfg.threads:  # the command line's, else the config's
            torch.set_num_threads(args.threads or cfg.threads)
        if args.evaluate_only and (args.out is None or args.no_eval or args.export_only):
            raise E2PError(
                "--evaluate-only needs --out (the artifact to re-evaluate), without --no-eval or --export-only"
            )
        if args.max_epochs is not None:
            cfg.max_epochs = args.max_epochs
        work = Path(args.work_dir or f"runs/{path.stem}")
        out = Path(args.out) if args.out else work / "artifacts"
        replaceable_files(out)  # refuse a folder write_artifact would not write into now, not after training
        if args.fresh and rank == 0:
            # Only what training itself wrote there: --work-dir may name a folder that holds more.
            shutil.rmtree(work / "checkpoint", ignore_errors=True)
            (work / "best.safetensors").unlink(missing_ok=True)
        if distributed:
            dist.barrier()
        corpus = load_corpus(args.data, cfg.split)
        log(f"corpus: {corpus.stats()}")
        prep = prepare(corpus, cfg)
        log(
            f"train pairs {len(prep.train_pairs)}, valid {len(prep.valid_pairs)}, "
            f"vocab src {len(prep.src_vocab)} tgt {len(prep.tgt_vocab)}"
        )
        if args.evaluate_only:
            reconfigure_artifact(out, cfg, policy)
            fit_ranker_step(prep, policy, out, log=log)
            evaluate_artifact(out, prep, cfg, log=log)
            log(f"re-evaluated {out} with the inference settings of {path}")
            return 0
        if args.export_only:
            result = finished_run(prep, cfg, work)
        else:
            metric = bleu_metric(prep, cfg) if rank == 0 else None
            result = run_training(
                prep, cfg, work, device=args.device, valid_metric=metric, log=log, progress=not args.quiet
            )
        if rank == 0:
            from e2p.model.training import load_weights

            model = load_weights(result["model"].cpu(), work / "best.safetensors")
            info = write_artifact(model, prep, cfg, policy, out, corpus_path=args.data, meta=result["meta"])
            fit_ranker_step(prep, policy, out, log=log)
            if not args.no_eval:
                evaluate_artifact(out, prep, cfg, log=log)
            log(f"wrote {out} (best epoch {info.get('best_epoch')}, {info.get('training_seconds')} s)")
    except E2PError as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 2
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
