"""Training: corpus -> vocabularies -> batches -> a model, with checkpoints that survive a kill.

`train/` is a thin command line over `run_training`. Everything here runs on the CPU in the
project's budget; a GPU is used when `device="auto"` finds one; under `torchrun` the model is
wrapped in DistributedDataParallel and each rank takes its share of the batches.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import math
import os
import random
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from ..constants import EXPERIMENTS_PAGE, REBUILD_COMMAND
from ..data.corpus import Corpus, Example
from ..data.features import CODE, SEP, FeatureConfig, Featurizer
from ..data.placeholders import all_placeholders
from ..data.retrieval import Retriever, says_nothing
from ..data.tokenizers import DEDENT, INDENT, NL
from ..data.vocab import Vocab
from ..errors import E2PError
from ..retired import drop_retired
from .loss import copy_supervision_loss, make_token_weights, output_cross_entropy, weighted_cross_entropy
from .transformer import ModelConfig, Seq2Seq

OPERATORS = ["(", ")", ":", "=", ",", ".", "[", "]", "+", "==", "%", "-", "*", "/", "{", "}"]


@dataclass
class TrainConfig:
    """Model, data, loss and optimisation: how a run trains. Its defaults are the default recipe
    (train/configs/default.json); how the artifact answers is its policy (e2p.answer.policy)."""

    # model (see ModelConfig for what each means)
    d_model: int = 256
    n_heads: int = 8
    enc_layers: int = 2
    dec_layers: int = 3
    d_ff: int = 512
    dropout: float = 0.1
    pre_norm: bool = True
    tie_output: bool = True
    shared_vocab: bool = True  # one vocabulary and embedding table for prompt and code
    copy_attention: bool = True  # pointer-generator output (needs shared_vocab)
    # data
    split: str = "eval"  # how the corpus is split (e2p.data.corpus.SPLIT_RULES): "eval" (EVAL.md's
    # train/valid/test), "conala" (CoNaLa's train file: a tenth as dev, tuned on; no test split here)
    # features
    copy: bool = True
    retrieval: bool = True
    max_src: int = 200
    max_tgt: int = 256
    min_freq: int = 2  # rarer tokens become <unk>
    # loss: the original design weights keywords, layout tokens and common operators
    label_smoothing: float = 0.1
    keyword_weight: float = 1.0
    layout_weight: float = 1.0
    operator_weight: float = 1.0
    copy_supervision: float = 0.5  # weight of the copy loss (`loss.copy_supervision_loss`): where
    # the target token is in the source the gate is taught to copy and the pointer to find it (needs
    # copy_attention and fused_loss)
    score_unk: bool = True  # False: <unk> targets cost nothing (pretraining: words outside the vocabulary)
    init_from: str = "artifacts/pretrained"  # folder of pretrained weights (`python -m train.pretrain`)
    # to start from ("": from scratch)
    # optimisation
    lr: float = 7e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    clip: float = 1.0
    batch_tokens: int = 1500  # target tokens per batch (length-bucketed)
    max_epochs: int = 18
    patience: int = 6  # epochs without a better valid metric before stopping
    min_epochs: int = 8  # never stop earlier: an early model's greedy output is too noisy to judge
    time_budget_min: float = 40.0  # stop starting new epochs after this
    checkpoint_every_s: float = 120.0  # mid-epoch checkpoints, so a kill loses little
    valid_every: int = 1
    seed: int = 1234
    threads: int = 0  # torch's CPU threads for the run (0: all cores). One thread keeps its pace on a machine
    # that other work shares: torch's threads wait on each other at every operation, and where another
    # process takes a core they wait for it (here 2 threads ran 10x slower beside one other job)
    # speed: `python -m e2p.evaluation.benchmark` times this trainer against `plain(cfg)` (all four off, which is
    # bit-identical with the trainer before them) side by side
    fast_dropout: bool = True  # CPU dropout masks from numpy's SFC64 (p rounded to 2^-16) and
    # explicit attention maths with dropout, instead of bernoulli_ and SDPA's unfused fallback: same
    # maths and distribution, another random stream (so not bit-identical with a run without it)
    fused_loss: bool = True  # score only non-pad target positions, and run the copy
    # mixture and the label-smoothed loss as one autograd function: same maths
    fused_adamw: bool = True  # torch's fused AdamW kernel: same update, fewer kernel calls
    reuse_memory: bool = True  # glibc: keep freed memory in the process (mallopt) so that
    # each step's big temporaries reuse warm pages instead of faulting in fresh ones; process-wide

    def model_config(self, src_vocab: int, tgt_vocab: int) -> ModelConfig:
        return ModelConfig(
            src_vocab=src_vocab,
            tgt_vocab=tgt_vocab,
            d_model=self.d_model,
            n_heads=self.n_heads,
            enc_layers=self.enc_layers,
            dec_layers=self.dec_layers,
            d_ff=self.d_ff,
            dropout=self.dropout,
            max_len=max(self.max_src, self.max_tgt + 2),
            pre_norm=self.pre_norm,
            tie_output=self.tie_output,
            share_embeddings=self.shared_vocab,
            copy_attention=self.copy_attention,
            pad_id=Vocab.pad_id,
        )

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(
            copy=self.copy,
            retrieval=self.retrieval,
            max_src=self.max_src,
            max_tgt=self.max_tgt,
        )

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"name", "description", "policy"})
        if unknown:
            raise E2PError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_trained(cls, data: dict) -> "TrainConfig":
        """The config a run was trained with, as an artifact's config.json ("train") or a pack stores
        it. Those written before an option was retired still name it: at its neutral value it is
        dropped; at any other the run trained otherwise than this code can, so it is refused."""

        def refuse(name: str, value) -> E2PError:
            return E2PError(
                f"this run was trained with {name} {value!r}, which was measured and not kept "
                f"({EXPERIMENTS_PAGE}): train it again without it (the shipped model: {REBUILD_COMMAND})"
            )

        return cls.from_dict(drop_retired(drop_retired(data, MOVED_TO_POLICY, refuse), RETIRED_OPTIONS, refuse))

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise E2PError(f"cannot read training config {path}: {err}") from None
        return cls.from_dict(data)


# Training options measured and not kept (docs/experiments.md: their figures, and the commit their code
# last lived in), with the value at which a run trained as today's code trains: one retrieved example (the
# nearest) in the source, no augmentation, no extra pairs, the raw weights, float32.
RETIRED_OPTIONS = {
    "neighbours": 1,
    "train_pool": 0,
    "rank_train_examples": False,
    "augment": 0,
    "extra_source": "",
    "extra_pairs": 0,
    "ema_decay": 0.0,
    "bf16": False,
}
# What training configs named before the answer policy had a file of its own (policy.json,
# e2p.answer.policy): they never shaped training, so a run's config that names them loads without them.
MOVED_TO_POLICY = dict.fromkeys(
    "decode_strategy beam_size syntax_guard eos_penalty follow_example examples own_decoding own_rerank rerank "
    "pool fallback ranker_pool ranker_decoding model_offset example_pool".split()
)


# ----------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """Everything derived from the corpus before training starts."""

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    featurizer: Featurizer
    src_vocab: Vocab
    tgt_vocab: Vocab
    train_pairs: list[tuple[list[int], list[int]]]
    valid_pairs: list[tuple[list[int], list[int]]]
    corpus_stats: dict = field(default_factory=dict)


def prepare(corpus: Corpus, cfg: TrainConfig) -> Prepared:
    if corpus.rule != cfg.split:
        raise E2PError(
            f"the corpus was split by the {corpus.rule!r} rule and the config asks for {cfg.split!r}: "
            "read it with load_corpus(path, cfg.split)"
        )
    train, valid, test = (corpus.split(s) for s in ("train", "valid", "test"))
    # The split is the heading's as written (EVAL.md); then train examples whose prompt says nothing
    # beyond boilerplate leave the training pairs and the memory, as they leave retrieval.
    said = [ex for ex in train if not says_nothing(ex.prompt)]
    stats = corpus.stats()
    if len(said) < len(train):
        stats["left_out"] = {"train prompt says nothing beyond boilerplate": len(train) - len(said)}
    train = said
    if not train or not valid:
        raise E2PError("the corpus has no train or valid examples: it is too small to train on")
    retriever = Retriever(train) if cfg.retrieval else None
    featurizer = Featurizer(cfg.feature_config(), retriever)  # no order: training shows the nearest
    train_tok = [featurizer.pair(ex) for ex in train]
    train_tok = [(s, t) for s, t in train_tok if len(t) <= cfg.max_tgt]
    valid_tok = [featurizer.pair(ex) for ex in valid]
    reserved = all_placeholders() + [SEP, CODE, NL, INDENT, DEDENT]
    if cfg.shared_vocab:
        src_vocab = tgt_vocab = Vocab.build((seq for pair in train_tok for seq in pair), cfg.min_freq, reserved)
    else:
        src_vocab = Vocab.build((s for s, _ in train_tok), cfg.min_freq, reserved)
        tgt_vocab = Vocab.build((t for _, t in train_tok), cfg.min_freq, reserved)

    def ids(pairs):
        return [(src_vocab.encode(s), tgt_vocab.encode(t)[: cfg.max_tgt]) for s, t in pairs]

    train_ids, valid_ids = ids(train_tok), ids(valid_tok)
    return Prepared(train, valid, test, featurizer, src_vocab, tgt_vocab, train_ids, valid_ids, stats)


def token_weights(cfg: TrainConfig, vocab: Vocab) -> torch.Tensor | None:
    weighted = {}
    for tok in vocab.tokens:
        if keyword.iskeyword(tok) and cfg.keyword_weight != 1.0:
            weighted[vocab.index[tok]] = cfg.keyword_weight
        elif tok in (NL, INDENT, DEDENT) and cfg.layout_weight != 1.0:
            weighted[vocab.index[tok]] = cfg.layout_weight
        elif tok in OPERATORS and cfg.operator_weight != 1.0:
            weighted[vocab.index[tok]] = cfg.operator_weight
    return make_token_weights(len(vocab), weighted) if weighted else None


def make_batches(pairs, batch_tokens: int, seed: int) -> list[list[int]]:
    """Indices grouped by similar length so little is padding; batch order shuffled by seed."""
    rng = random.Random(seed)
    # Bucket by target length, then source length inside a bucket: both sides pad little.
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][1]) // 12, len(pairs[i][0]) + rng.random() * 8))
    batches, current, longest = [], [], 0
    for i in order:
        longest_if = max(longest, len(pairs[i][1]) + 1, len(pairs[i][0]))
        if current and longest_if * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest_if = [], max(len(pairs[i][1]) + 1, len(pairs[i][0]))
        current.append(i)
        longest = longest_if
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(pairs, index: list[int], device, score_unk: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src (B,S), tgt_in (B,T) = BOS+code, tgt_out (B,T) = code+EOS), right-padded; `score_unk`
    False pads <unk> in tgt_out, so that the loss skips it."""
    B = len(index)
    S = max(len(pairs[i][0]) for i in index)
    T = max(len(pairs[i][1]) for i in index) + 1
    src = torch.full((B, S), Vocab.pad_id, dtype=torch.long)
    tgt_in = torch.full((B, T), Vocab.pad_id, dtype=torch.long)
    tgt_out = torch.full((B, T), Vocab.pad_id, dtype=torch.long)
    for row, i in enumerate(index):
        s, t = pairs[i]
        src[row, : len(s)] = torch.tensor(s)
        tgt_in[row, : len(t) + 1] = torch.tensor([Vocab.bos_id] + t)
        tgt_out[row, : len(t) + 1] = torch.tensor(t + [Vocab.eos_id])
    if not score_unk:
        tgt_out[tgt_out == Vocab.unk_id] = Vocab.pad_id
    return src.to(device), tgt_in.to(device), tgt_out.to(device)


# ----------------------------------------------------------------------------- checkpoints


def _save_checkpoint(path: Path, model, optimizer, meta: dict) -> None:
    """Model and optimizer tensors as safetensors, the rest as JSON: no pickle anywhere."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in _unwrap(model).state_dict().items()}
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().contiguous().cpu()
    tmp = path / "state.safetensors.tmp"
    save_file(_dedupe_shared(tensors), str(tmp))
    meta = dict(meta, param_groups=opt["param_groups"])
    (path / "meta.json.tmp").write_text(json.dumps(meta))
    os.replace(tmp, path / "state.safetensors")
    os.replace(path / "meta.json.tmp", path / "meta.json")


def _dedupe_shared(tensors: dict) -> dict:
    """safetensors refuses tensors that share memory (tied embeddings): store clones."""
    seen, out = set(), {}
    for k, v in tensors.items():
        key = (v.data_ptr(), v.shape)
        out[k] = v.clone() if key in seen else v
        seen.add(key)
    return out


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _load_checkpoint(path: Path, model, optimizer) -> dict:
    tensors = load_file(str(path / "state.safetensors"))
    meta = json.loads((path / "meta.json").read_text())
    _unwrap(model).load_state_dict(_prefixed(tensors, "model."))
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


# ----------------------------------------------------------------------------- loop


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise E2PError(f"unknown device {name!r}: {err}") from None


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


SPEED_OPTIONS = ("fast_dropout", "fused_loss", "fused_adamw", "reuse_memory")


def with_speed_options(cfg: TrainConfig) -> TrainConfig:
    """The same run with every speed option that keeps the maths on."""
    return replace(cfg, **{name: True for name in SPEED_OPTIONS})


def plain(cfg: TrainConfig) -> TrainConfig:
    """The same run with every speed option off and no copy loss: the trainer as it was before them."""
    return replace(cfg, copy_supervision=0.0, **{name: False for name in SPEED_OPTIONS})


def make_model(cfg: TrainConfig, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    model = Seq2Seq(cfg.model_config(src_vocab, tgt_vocab))
    return model.set_fast_dropout(cfg.fast_dropout)


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to serve big blocks from its heap and never hand freed memory back
    (the process keeps its peak), so that the same big temporaries, allocated and freed every
    step, stop costing fresh zeroed pages. Process-wide; False where there is no glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        mmap_ok = libc.mallopt(m_mmap_threshold, 1 << 30)
        return bool(mmap_ok) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-9,
        **({"fused": True} if cfg.fused_adamw else {}),
    )


def batch_loss(model, src, tgt_in, tgt_out, cfg: TrainConfig, weights, label_smoothing: float) -> torch.Tensor:
    """The loss of one batch, by the path the config picks (the same maths either way)."""
    if cfg.fused_loss:
        select = tgt_out != Vocab.pad_id
        logits, copy = model(src, tgt_in, select)
        targets = tgt_out[select]
        loss = output_cross_entropy(logits, copy, targets, weights, label_smoothing)
        if cfg.copy_supervision and copy is not None:
            loss = loss + cfg.copy_supervision * copy_supervision_loss(copy, targets)
        return loss
    return weighted_cross_entropy(model(src, tgt_in), tgt_out, weights, label_smoothing, Vocab.pad_id)


def train_step(model, optimizer, src, tgt_in, tgt_out, cfg: TrainConfig, weights, lr: float) -> torch.Tensor:
    """One optimisation step on one batch; returns the (detached) loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = batch_loss(model, src, tgt_in, tgt_out, cfg, weights, cfg.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def valid_loss(model, pairs, cfg: TrainConfig, weights, device) -> float:
    """Mean unsmoothed loss per target token."""
    model.eval()
    total, count = 0.0, 0
    for index in make_batches(pairs, cfg.batch_tokens, seed=0):
        src, tgt_in, tgt_out = collate(pairs, index, device, cfg.score_unk)
        loss = batch_loss(model, src, tgt_in, tgt_out, cfg, weights, 0.0)
        n = int((tgt_out != Vocab.pad_id).sum())
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / max(count, 1)


def run_training(
    prep: Prepared,
    cfg: TrainConfig,
    work_dir: Path,
    *,
    device: str = "cpu",
    valid_metric=None,
    log=print,
    progress: bool = True,
) -> dict:
    """Train until the epoch budget, the time budget or patience runs out; resume from work_dir.

    `valid_metric(model) -> float` scores a decoding of the valid split (higher is better); the
    best model by it is kept in work_dir/best.safetensors. Returns the training summary.
    """
    from tqdm import tqdm

    distributed = dist.is_available() and dist.is_initialized()
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    dev = resolve_device(device)
    if cfg.copy_supervision and not (cfg.copy_attention and cfg.fused_loss):
        raise E2PError("copy_supervision needs copy_attention and fused_loss")
    if cfg.reuse_memory:
        reuse_freed_memory()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = make_model(cfg, len(prep.src_vocab), len(prep.tgt_vocab)).to(dev)
    optimizer = make_optimizer(model, cfg)
    weights = token_weights(cfg, prep.tgt_vocab)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt = work_dir / "checkpoint"
    meta = {"epoch": 0, "batch": 0, "step": 0, "best": None, "best_epoch": None, "stale": 0, "log": [], "seconds": 0.0}
    resume = (ckpt / "meta.json").exists()
    if not resume and cfg.init_from:
        load_pretrained(model, Path(cfg.init_from), prep.src_vocab)
        carried = getattr(model, "pretrained_tokens", len(prep.src_vocab))
        log(
            f"starting from the pretrained weights in {cfg.init_from}"
            + (
                ""
                if carried == len(prep.src_vocab)
                else f" ({carried} of {len(prep.src_vocab)} tokens' rows carried over)"
            )
        )
    if resume:
        meta.update(_load_checkpoint(ckpt, model, optimizer))
        log(f"resuming from {ckpt}: epoch {meta['epoch'] + 1}, batch {meta['batch']}, step {meta['step']}")
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
    model.train()
    steps_per_epoch = len(make_batches(prep.train_pairs, cfg.batch_tokens, cfg.seed)) // world
    total_steps = steps_per_epoch * cfg.max_epochs
    started = time.time() - meta["seconds"]
    last_ckpt = time.time()
    step = meta["step"]
    for epoch in range(meta["epoch"], cfg.max_epochs):
        batches = make_batches(prep.train_pairs, cfg.batch_tokens, cfg.seed + epoch)
        batches = batches[rank::world][:steps_per_epoch]  # equal count on every rank
        epoch_loss, epoch_tokens, t0 = 0.0, 0, time.time()
        bar = tqdm(
            range(meta["batch"], len(batches)),
            desc=f"epoch {epoch + 1}",
            disable=not progress or rank,
            leave=False,
            mininterval=5,
        )
        for b in bar:
            src, tgt_in, tgt_out = collate(prep.train_pairs, batches[b], dev, cfg.score_unk)
            lr = lr_at(step, cfg, total_steps)
            loss = train_step(model, optimizer, src, tgt_in, tgt_out, cfg, weights, lr)
            step += 1
            n = int((tgt_out != Vocab.pad_id).sum())
            epoch_loss, epoch_tokens = epoch_loss + loss.item() * n, epoch_tokens + n
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if rank == 0 and time.time() - last_ckpt > cfg.checkpoint_every_s:
                meta.update(epoch=epoch, batch=b + 1, step=step, seconds=time.time() - started)
                _save_checkpoint(ckpt, model, optimizer, meta)
                last_ckpt = time.time()
        meta["batch"] = 0
        row = {
            "epoch": epoch + 1,
            "train_loss": round(epoch_loss / max(epoch_tokens, 1), 4),
            "tokens_per_s": round(epoch_tokens * world / max(time.time() - t0, 1e-6), 1),
            "lr": round(lr_at(step, cfg, total_steps), 7),
        }
        if rank == 0:
            kept = _unwrap(model)  # what is validated and shipped
            row["valid_loss"] = round(valid_loss(kept, prep.valid_pairs, cfg, weights, dev), 4)
            if valid_metric is not None and (epoch + 1) % cfg.valid_every == 0:
                score = float(valid_metric(kept))
                row["valid_bleu"] = round(score, 2)
                if meta["best"] is None or score > meta["best"]:
                    meta.update(best=score, best_epoch=epoch + 1, stale=0)
                    save_weights(kept, work_dir / "best.safetensors")
                else:
                    meta["stale"] += 1
            elif valid_metric is None:
                save_weights(kept, work_dir / "best.safetensors")
                meta["best_epoch"] = epoch + 1
            row["seconds"] = round(time.time() - started, 1)
            meta["log"].append(row)
            log(json.dumps(row))
        meta.update(epoch=epoch + 1, step=step, seconds=time.time() - started)
        if rank == 0:
            _save_checkpoint(ckpt, model, optimizer, meta)
            last_ckpt = time.time()
        patience_out = meta["stale"] >= cfg.patience and epoch + 1 >= cfg.min_epochs
        stop = patience_out or (time.time() - started) / 60 > cfg.time_budget_min
        if distributed:
            flag = torch.tensor([int(stop)])
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            log(
                f"stopping after epoch {epoch + 1}: "
                + (
                    "no better valid metric for {} epochs".format(cfg.patience)
                    if patience_out
                    else f"time budget of {cfg.time_budget_min} min used"
                )
            )
            break
    meta["seconds"] = time.time() - started
    if distributed:  # DDP keeps replicas equal; check it rather than trust it
        digest = weights_digest(_unwrap(model))
        digests = [None] * world
        dist.all_gather_object(digests, digest)
        if len(set(digests)) != 1:
            raise E2PError(f"ranks ended with different weights: {digests}")
        log(f"all {world} ranks hold the same weights (sha256 {digest}) after {step} steps")
    return {"model": _unwrap(model).set_fast_dropout(False), "meta": meta}


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_weights(model, path: Path, dtype: torch.dtype | None = None) -> None:
    """safetensors of the state dict; `dtype=torch.float16` halves a shipped file (loaded back as float32)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(_dedupe_shared(tensors), str(path))


PRETRAINED_WEIGHTS, PRETRAINED_INFO = "weights.safetensors", "pretrained.json"


PRETRAINED_VOCAB = "vocab.json"  # the vocabulary the pretrained weights were built on
VOCAB_TENSORS = ("src_embed.weight", "tgt_embed.weight", "lm_head.weight")  # one row per token


def load_pretrained(model: Seq2Seq, folder: Path, vocab: Vocab) -> Seq2Seq:
    """Start from `python -m train.pretrain`'s weights; they must share this run's shape. On the same
    vocabulary every tensor is loaded; on another (a run on another corpus, e.g. CoNaLa) the rows of
    the tokens both vocabularies hold are carried over by token, the other rows keep their fresh
    initialisation, and every other tensor is loaded (this needs the pretrained vocabulary,
    `vocab.json` beside the weights). `model.pretrained_tokens` says how many rows were carried."""
    try:
        info = json.loads((folder / PRETRAINED_INFO).read_text())
    except (OSError, ValueError) as err:
        raise E2PError(f"no pretrained weights in {folder}: {err}; run python -m train.pretrain") from None
    same_vocab = info.get("vocab_sha256") == vocab.digest()
    old_vocab = None
    if not same_vocab:
        path = folder / PRETRAINED_VOCAB
        old_vocab = Vocab.load(path) if path.is_file() else None
        if old_vocab is None or old_vocab.digest() != info.get("vocab_sha256"):
            raise E2PError(
                f"the pretrained weights in {folder} were built on another vocabulary and the folder holds "
                f"not that vocabulary ({PRETRAINED_VOCAB}) to map it by token: rerun python -m train.pretrain "
                "with this corpus and config"
            )
    # the positions are computed, not learned: a run on another corpus may cover other lengths
    ignore = ("dropout",) if same_vocab else ("dropout", "src_vocab", "tgt_vocab", "max_len")
    shape = {k: v for k, v in model.config.to_dict().items() if k not in ignore}
    if {k: v for k, v in info.get("model", {}).items() if k not in ignore} != shape:
        raise E2PError(f"the pretrained weights in {folder} are for another model shape: {info.get('model')}")
    state = {k: v.float() for k, v in load_file(str(folder / PRETRAINED_WEIGHTS)).items()}
    if same_vocab:
        model.pretrained_tokens = len(vocab)
        return model.load_weights(state)
    own = model.state_dict()
    pairs = [(i, old_vocab.index[tok]) for i, tok in enumerate(vocab.tokens) if tok in old_vocab.index]
    new_rows = torch.tensor([i for i, _ in pairs], dtype=torch.long)
    old_rows = torch.tensor([j for _, j in pairs], dtype=torch.long)
    for name in VOCAB_TENSORS:
        if name in state and name in own:
            mapped = own[name].detach().clone()
            mapped[new_rows] = state[name][old_rows]
            state[name] = mapped
    model.pretrained_tokens = len(pairs)
    return model.load_weights(state)


def load_weights(model: Seq2Seq, path: Path) -> Seq2Seq:
    return model.load_weights(load_file(str(path)))
