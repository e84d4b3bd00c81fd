"""`torchrun --nproc_per_node=2 -m train ...`: DistributedDataParallel on CPU (gloo), equal weights."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, train_args

pytestmark = pytest.mark.slow


def test_torchrun_two_cpu_processes_agree_on_weights(synthetic_corpus, tmp_path):
    config = json.loads((REPO_ROOT / "train/configs/tiny.json").read_text())
    config.update(retrieval=False, batch_tokens=800, max_epochs=1)
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={port}",
            "-m",
            *train_args(synthetic_corpus, tmp_path / "cfg.json", tmp_path / "out", tmp_path / "run"),
            "--quiet",
            "--no-eval",
            "--threads",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"all 2 ranks hold the same weights \(sha256 ([0-9a-f]{64})\) after (\d+) steps", proc.stdout)
    assert match, proc.stdout[-3000:]
    assert int(match.group(2)) > 0
    assert (tmp_path / "out/weights.safetensors").exists()
