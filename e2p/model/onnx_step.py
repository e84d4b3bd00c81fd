"""The fast decoder step, run by ONNX Runtime.

`FastDecoder.step` is about a hundred small aten calls, each paying PyTorch's dispatch from Python;
on this project's 2-core CPU that overhead is as large as the step's arithmetic. Here the same step
(the same fused weights, the same maths) is exported once to an ONNX graph and run by ONNX
Runtime's CPU engine, which runs the whole step in C++ and multiplies small row blocks with its
own kernels (MLAS). Measured on the shipped model, one thread, alternating in one process: one row
0.78-0.81 ms a step against 1.02-1.14 ms for `FastDecoder.step`, five beam rows 1.93-2.03 against
2.57-2.87 ms; log-probs within 6e-6 of it.

The graph keeps no state: it takes the key/value cache (the `FastState` buffer, read in place
through numpy) and returns the new position's keys and values, which `step` writes into the cache,
so beam reordering stays `FastState.reorder`. Attention covers the whole buffer with a mask past
the current position: a fixed shape, no slicing per step.

Exporting takes 1-2 s, so the graph is kept on disk (`cache_dir()`), named by a digest of the
weights, the graph's version and the library versions, and loaded in a few hundredths of a second
afterwards. Used for one source (`decoding.decode`) where onnxruntime and onnx are installed;
elsewhere decoding keeps `FastDecoder`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fast_decoder import FastDecoder, FastState, fast_decoder_for

log = logging.getLogger(__name__)

GRAPH_VERSION = 2  # bump when _StepGraph changes: a graph on disk from another version is not used
# Positions the cache has room for at first. The graph attends over the whole buffer (masked past
# the position), so a buffer sized for max_len (257) made a 5-row step at position 20 take 1.7x the
# time it takes with 48 positions of room; grown by doubling up to max_len, the room stays under
# twice the output.
FIRST_ROOM = 32


class _StepGraph(nn.Module):
    """`FastDecoder._step` written for export: the cache is an input (masked past `t`) and the new
    position's keys and values an output."""

    def __init__(self, fast: FastDecoder):
        super().__init__()
        self.fast = fast

    def forward(self, tok: Tensor, t: Tensor, cache: Tensor, cross_k: Tensor, cross_v: Tensor, *copy: Tensor):
        f = self.fast
        # Shapes are written with -1 for the rows, never tok.size(0): a size read from an input
        # exports as a chain of Shape, Gather, Unsqueeze and Concat nodes before every reshape,
        # about fifty nodes in all, each paid on every step.
        C, H, D = f.embed.size(1), f.H, f.D
        pre = f.cfg.pre_norm
        x = f.embed[tok] * f.embed_scale + f.positions.pe[t]  # (B, C)
        past = torch.where(torch.arange(cache.size(3)) < t, 0.0, float("-inf"))  # positions written so far
        new = []
        for i, ly in enumerate(f.layers):
            (n1w, n1b, e1), (n2w, n2b, e2), (n3w, n3b, e3) = ly.norms
            h = F.layer_norm(x, (C,), n1w, n1b, e1) if pre else x
            qkv = (h @ ly.qkv_w + ly.qkv_b).view(-1, 3, H, D)
            q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # (B, H, D)
            new += [k, v]
            s_past = torch.matmul(q.unsqueeze(2), cache[:, 2 * i].transpose(-1, -2)).squeeze(2) * f.scale + past
            s_now = (q * k).sum(-1, keepdim=True) * f.scale  # the position itself, not yet in the cache
            p = torch.cat([s_past, s_now], -1).softmax(-1)  # (B, H, capacity + 1)
            y = torch.matmul(p[..., :-1].unsqueeze(2), cache[:, 2 * i + 1]).squeeze(2) + p[..., -1:] * v
            x = x + (y.reshape(-1, C) @ ly.self_out_w + ly.self_out_b)
            if not pre:
                x = F.layer_norm(x, (C,), n1w, n1b, e1)
            h = F.layer_norm(x, (C,), n2w, n2b, e2) if pre else x
            q = (h @ ly.cross_q_w + ly.cross_q_b).view(-1, H, 1, D)
            y = torch.matmul(torch.matmul(q, cross_k[i].transpose(-1, -2)).softmax(-1), cross_v[i])  # keys pre-scaled
            x = x + (y.reshape(-1, C) @ ly.cross_out_w + ly.cross_out_b)
            if not pre:
                x = F.layer_norm(x, (C,), n2w, n2b, e2)
            h = F.layer_norm(x, (C,), n3w, n3b, e3) if pre else x
            x = x + (torch.relu(h @ ly.fc1_w + ly.fc1_b) @ ly.fc2_w + ly.fc2_b)
            if not pre:
                x = F.layer_norm(x, (C,), n3w, n3b, e3)
        if f.final_norm is not None:
            w, b, eps = f.final_norm
            x = F.layer_norm(x, (C,), w, b, eps)
        out = x @ f.head_w
        V = f.V
        if not f.cfg.copy_attention:
            return out.log_softmax(-1), torch.stack(new, 1)
        copy_keys_t, src = copy
        att = (out[:, V : V + C] @ copy_keys_t[0]).softmax(-1)  # (B, S)
        gate = torch.sigmoid(out[:, V + C :] + f.gate_b)
        probs = (out[:, :V].softmax(-1) * gate).scatter_add(-1, src.expand_as(att), att * (1 - gate))
        return probs.clamp_min(1e-9).log().log_softmax(-1), torch.stack(new, 1)


def cache_dir() -> Path:
    """Where exported graphs are kept: $E2P_CACHE_DIR, else ~/.cache/e2p (XDG_CACHE_HOME honoured)."""
    if os.environ.get("E2P_CACHE_DIR"):
        return Path(os.environ["E2P_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "e2p"


def _digest(fast: FastDecoder) -> str:
    import onnxruntime

    h = hashlib.sha256(f"{GRAPH_VERSION} {torch.__version__} {onnxruntime.__version__} {fast.cfg}".encode())
    for name, p in fast.model.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _export(fast: FastDecoder) -> bytes:
    L, H, D, S, cap = len(fast.layers), fast.H, fast.D, 7, 5
    cross = torch.zeros(L, 1, H, S, D)
    args = [torch.ones(2, dtype=torch.long), torch.tensor(1), torch.zeros(2, 2 * L, H, cap, D), cross, cross]
    names = ["tok", "t", "cache", "cross_k", "cross_v"]
    axes = {"tok": {0: "B"}, "cache": {0: "B", 3: "cap"}, "cross_k": {3: "S"}, "cross_v": {3: "S"}}
    if fast.cfg.copy_attention:
        args += [torch.zeros(1, fast.embed.size(1), S), torch.zeros(1, S, dtype=torch.long)]
        names += ["copy_keys_t", "src"]
        axes.update(copy_keys_t={2: "S"}, src={1: "S"})
    axes.update(log_probs={0: "B"}, new_kv={0: "B"})
    buf = io.BytesIO()
    grads = [p.requires_grad for p in fast.model.parameters()]
    try:  # the norms' weights are the model's own parameters: constants in the graph
        for p in fast.model.parameters():
            p.requires_grad_(False)
        # the exporter's notes on tracing (constants, the legacy exporter) are about this export only
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _StepGraph(fast).eval(),
                tuple(args),
                buf,
                input_names=names,
                output_names=["log_probs", "new_kv"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    finally:
        for p, g in zip(fast.model.parameters(), grads):
            p.requires_grad_(g)
    return buf.getvalue()


class OnnxDecoder:
    """`init_state` / `step` as `FastDecoder`'s, the step run by an ONNX Runtime session."""

    def __init__(self, fast: FastDecoder, session):
        self.fast = fast
        self.session = session
        self.copy = fast.cfg.copy_attention

    def init_state(self, memory: Tensor, src_pad: Tensor, src: Tensor | None, capacity: int) -> FastState:
        """As `FastDecoder.init_state`, for one source (batch 1, no padding). The cache starts with
        room for FIRST_ROOM positions and doubles when full (`step`), up to `capacity`."""
        state = self.fast.init_state(memory, src_pad, src, min(capacity, FIRST_ROOM))
        state.capacity = capacity
        # the graph's inputs that stay for the whole decode, as numpy views (no copies)
        state.feeds = {
            "cross_k": torch.stack(state.cross_keys).numpy(),
            "cross_v": torch.stack(state.cross_values).numpy(),
        }
        if self.copy:
            state.feeds.update(copy_keys_t=state.copy_keys_t.numpy(), src=state.src_ids.numpy())
        return state

    def step(self, tokens_last: Tensor, state: FastState) -> tuple[Tensor, FastState]:
        t = state.length
        if t >= state.cache.size(3):  # full: twice the room (at most the capacity), what is filled copied over
            room = max(t + 1, min(2 * t, state.capacity))
            grown = state.cache.new_zeros(state.cache.shape[:3] + (room, state.cache.size(4)))
            grown[:, :, :, :t] = state.cache
            state.cache = grown
        log_probs, new = self.session.run(
            None,
            {
                "tok": tokens_last.numpy(),
                "t": np.array(t, dtype=np.int64),
                "cache": state.cache.numpy(),
                **state.feeds,
            },
        )
        state.cache[:, :, :, t] = torch.from_numpy(new)
        state.length = t + 1
        return torch.from_numpy(log_probs), state


def _session(graph: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # one thread, as the rest of decoding: the app serves several sessions on few cores
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # Where it has more than one thread (the app's default is 2), ONNX Runtime's pool spins while it
    # waits for work, burning a core that the server's Python and the users' browsers need: with
    # spinning, one browser session took 1.8-2.1 s p50 per answer, without it 1.0-1.3 s.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])


def attached(model) -> OnnxDecoder | None:
    """The OnnxDecoder `onnx_decoder_for` built for the model's current weights, else None (never
    builds one: decoding uses it only where the caller chose it, as `Generator` does)."""
    cached = getattr(model, "_onnx_decoder", None)
    if cached is None or cached[0] != tuple(p._version for p in model.parameters()):
        return None
    return cached[1]


def onnx_decoder_for(model) -> OnnxDecoder | None:
    """The model's OnnxDecoder (built once per weights, the graph kept on disk), or None where
    onnxruntime or onnx is not installed or the export fails (decoding then keeps FastDecoder)."""
    versions = tuple(p._version for p in model.parameters())
    cached = getattr(model, "_onnx_decoder", None)
    if cached is not None and cached[0] == versions:
        return cached[1]
    decoder = None
    if importlib.util.find_spec("onnxruntime") is not None:
        fast = fast_decoder_for(model)
        try:
            path = cache_dir() / f"step-{_digest(fast)}.onnx"
            graph = path.read_bytes() if path.exists() else None
            if graph is None and importlib.util.find_spec("onnx") is not None:  # torch.onnx.export needs it
                graph = _export(fast)
                _store(path, graph)
            decoder = OnnxDecoder(fast, _session(graph)) if graph is not None else None
        except Exception:  # noqa: BLE001 - any failure leaves decoding on FastDecoder, which is correct
            log.warning("e2p: the ONNX decoder step could not be built; decoding without it", exc_info=True)
    object.__setattr__(model, "_onnx_decoder", (versions, decoder))  # not a module attribute: not saved
    return decoder


def _store(path: Path, graph: bytes) -> None:
    """Write the graph where it is looked for, atomically; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(graph)
        os.replace(tmp.name, path)
    except OSError as err:
        log.info("e2p: not keeping the ONNX graph at %s: %s", path, err)
