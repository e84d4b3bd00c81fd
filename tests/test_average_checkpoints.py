"""benchmarks/average_checkpoints.py: an artifact whose weights are the mean of a run's weight files."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import REPO_ROOT
from safetensors.torch import load_file, save_file

from e2p.artifact.bundle import verify

SCRIPT = str(REPO_ROOT / "benchmarks/average_checkpoints.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_copy_holds_the_mean_and_a_valid_manifest(tiny_artifacts, tmp_path):
    run = tiny_artifacts.parent / "run"
    best = load_file(str(run / "best.safetensors"))
    shifted = {k: v + 2.0 if v.is_floating_point() else v for k, v in best.items()}
    save_file(shifted, str(tmp_path / "shifted.safetensors"))
    done = _run(
        "--artifacts",
        tiny_artifacts,
        "--weights",
        run / "best.safetensors",
        tmp_path / "shifted.safetensors",
        "--out",
        tmp_path / "avg",
    )
    assert done.returncode == 0, done.stderr
    verify(tmp_path / "avg")
    shipped_dtype = next(iter(load_file(str(tiny_artifacts / "weights.safetensors")).values())).dtype
    mean = load_file(str(tmp_path / "avg/weights.safetensors"))
    for name, value in best.items():
        assert mean[name].dtype == shipped_dtype
        torch.testing.assert_close(mean[name].float(), value.float() + 1.0, atol=1e-2, rtol=1e-3)


def test_checkpoints_average_with_best_and_mismatches_are_refused(tiny_artifacts, tmp_path):
    run = tiny_artifacts.parent / "run"
    done = _run(
        "--artifacts",
        tiny_artifacts,
        "--weights",
        run / "best.safetensors",
        run / "checkpoint/state.safetensors",
        "--out",
        tmp_path / "avg",
    )
    assert done.returncode == 0, done.stderr
    save_file({"other": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    refused = _run(
        "--artifacts",
        tiny_artifacts,
        "--weights",
        run / "best.safetensors",
        tmp_path / "other.safetensors",
        "--out",
        tmp_path / "bad",
    )
    assert refused.returncode == 2 and "does not hold the same tensors" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "bad").exists()
    again = _run(
        "--artifacts",
        tiny_artifacts,
        "--weights",
        run / "best.safetensors",
        run / "best.safetensors",
        "--out",
        tmp_path / "avg",
    )
    assert again.returncode == 2 and "exists" in again.stderr


def test_bad_weight_files_get_a_message_not_a_traceback(tiny_artifacts, tmp_path):
    run = tiny_artifacts.parent / "run"
    best = load_file(str(run / "best.safetensors"))
    (tmp_path / "notes.json").write_text("{}")
    cut = {k: v[..., :1].contiguous() if v.dim() else v for k, v in best.items()}  # same names, other shapes
    save_file(cut, str(tmp_path / "cut.safetensors"))
    for other, message in (
        ("notes.json", "not a safetensors weight file"),
        ("cut.safetensors", "do not fit the model"),
    ):
        done = _run(
            "--artifacts", tiny_artifacts, "--weights", tmp_path / other, tmp_path / other, "--out", tmp_path / "x"
        )
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "x").exists()


def test_a_checkpoint_gives_its_weight_average_where_it_keeps_one(tmp_path):
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        from average_checkpoints import model_tensors
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    raw, avg = torch.zeros(2), torch.ones(2)
    save_file({"model.w": raw, "ema.module.w": avg, "ema.n_averaged": torch.tensor(3)}, str(tmp_path / "a.safetensors"))
    save_file({"model.w": raw}, str(tmp_path / "b.safetensors"))
    assert torch.equal(model_tensors(tmp_path / "a.safetensors")["w"], avg)
    assert torch.equal(model_tensors(tmp_path / "b.safetensors")["w"], raw)
