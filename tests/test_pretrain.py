"""Pretraining on unlabelled Python: which functions become pairs, the pairs, the command, and
starting a fine-tune from its weights."""

from __future__ import annotations

import json
import random
import tarfile

import pytest
from conftest import REPO_ROOT, run_cli

from e2p.data.corpus import Example
from e2p.data.tokenizers import DEDENT, INDENT, NL, code_tokens
from e2p.data.vocab import Vocab
from e2p.errors import E2PError
from e2p.model.pretraining import corrupt, pretrain_pairs, read_functions
from e2p.model.training import TrainConfig

LIBRARY = {
    "maths/add.py": '''
def add_numbers(first: int, second: int) -> int:
    """Return the sum of two numbers.

    >>> add_numbers(1, 2)
    3
    """
    total = first + second
    return total


class Box:
    def __init__(self, size):
        self.size = size

    def volume_of(self, scale=2):
        return self.size * self.size * self.size * scale
''',
    "maths/copy_of_add.py": '''
def add_numbers(first, second):
    """Another file, the same function."""
    total = first + second
    return total
''',
    "strings/reverse.py": '''
def reverse_text(text):
    """Example: >>> reverse_text("ab")"""
    out = ""
    for ch in text:
        out = ch + out
    return out


def tiny(): pass


def held_out_twin(values):
    """Count the even values of a list."""
    count = 0
    for v in values:
        if v % 2 == 0:
            count += 1
    return count


def same_prompt_as_test(a, b):
    """write a function to multiply two numbers"""
    product = a * b
    return product
''',
    "broken.py": "def oops(:\n    pass\n",
}
HELD_OUT = [
    Example(
        "count the even numbers",
        "def held_out_twin(values):\n    count = 0\n    for v in values:\n        if v % 2 == 0:\n"
        "            count += 1\n    return count\nprint(held_out_twin([1, 2]))\n",
        line=1,
    ),
    Example("Write a function to multiply two numbers!", "print(2 * 3)\n", line=2),
]


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "lib"
    for name, text in LIBRARY.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip())
    (root / "LICENSE.md").write_text("MIT License\n")
    return root


def test_functions_are_read_without_docstrings_annotations_or_held_out_rows(library):
    data = read_functions(library, HELD_OUT)
    by_name = {fn.name: fn for fn in data.functions}
    assert sorted(by_name) == ["add_numbers", "reverse_text", "volume_of"]
    add = by_name["add_numbers"]
    assert add.prompt == "Return the sum of two numbers."
    assert add.code == "def add_numbers(first, second):\n    total = first + second\n    return total\n"
    assert by_name["reverse_text"].prompt == "write a python function reverse text"  # doc was only a doctest
    assert by_name["volume_of"].prompt == "write a python function volume of"
    assert data.stats["dropped"] == {
        "duplicate function": 1,
        "file does not parse": 1,
        "same prompt as a valid/test example": 1,
        "same tree as a valid/test reference": 1,
        "special method": 1,
        "too short": 1,
    }


def test_a_nested_function_keeps_its_own_docstring_as_prompt(tmp_path):
    (tmp_path / "outer.py").write_text(
        'def make_counter(start):\n    """Build a counter that starts at a given number."""\n\n'
        '    def step_forward(by):\n        """Move the counter forward by a given amount."""\n'
        "        nonlocal start\n        start = start + by\n        return start\n\n"
        "    total = start * 2\n    return step_forward\n"
    )
    prompts = {fn.name: fn.prompt for fn in read_functions(tmp_path, []).functions}
    assert prompts == {
        "make_counter": "Build a counter that starts at a given number.",
        "step_forward": "Move the counter forward by a given amount.",  # not its name's words
    }


def test_a_tarball_reads_like_the_folder(library, tmp_path):
    archive = tmp_path / "lib.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(library, arcname="lib")
    folder, packed = read_functions(library, HELD_OUT), read_functions(archive, HELD_OUT)
    assert [(f.name, f.code) for f in packed.functions] == [(f.name, f.code) for f in folder.functions]
    with pytest.raises(E2PError, match="no pretraining source"):
        read_functions(tmp_path / "missing.tar.gz", [])


def test_corruption_is_seeded_and_keeps_the_layout():
    tokens = code_tokens(LIBRARY["strings/reverse.py"].split("\n\n\n")[0])
    a, b = corrupt(tokens, random.Random(3)), corrupt(tokens, random.Random(3))
    assert a == b and a != tokens
    for mark in (INDENT, DEDENT):
        assert a.count(mark) == tokens.count(mark)
    assert a.count(NL) <= tokens.count(NL)


def test_each_function_gives_a_write_and_a_denoise_pair(library):
    data = read_functions(library, [])
    cfg = TrainConfig(shared_vocab=True, max_src=128, max_tgt=96)
    tokens = [t for fn in data.functions for t in code_tokens(fn.code)] + ["<sep>", "<code>"]
    vocab = Vocab.build([tokens + [w.lower() for fn in data.functions for w in fn.prompt.split()]], min_freq=1)
    pairs, counts = pretrain_pairs(data, cfg, vocab, seed=0)
    n = len(data.functions)
    assert counts == {"denoise": n, "write": n} and len(pairs) == 2 * n
    for (write_src, write_tgt), (noisy_src, noisy_tgt) in zip(pairs[::2], pairs[1::2]):
        assert write_tgt == noisy_tgt and Vocab.unk_id not in write_tgt
        assert vocab.index["<code>"] in write_src and vocab.index["<code>"] in noisy_src
        assert write_src != noisy_src


def tiny_pretrain_config(tmp_path, **over) -> str:
    path = tmp_path / "pre.json"
    path.write_text(json.dumps({"base": "tiny", "max_epochs": 1, "score_unk": False, **over}))
    return str(path)


@pytest.mark.slow  # two real training runs
def test_pretrain_then_fine_tune_from_its_weights(library, synthetic_corpus, tmp_path):
    # the synthetic corpus holds none of HELD_OUT, so all 5 usable functions of the library are kept
    pre = tmp_path / "pretrained"
    common = ["--data", str(synthetic_corpus), "--config", tiny_pretrain_config(tmp_path), "--quiet"]
    run_cli(
        "train.pretrain",
        *common,
        "--source",
        str(library),
        "--out",
        str(pre),
        "--work-dir",
        str(tmp_path / "pw"),
        check=True,
    )
    info = json.loads((pre / "pretrained.json").read_text())
    assert info["epochs"] == 1 and info["data"]["functions"] == 5 and (pre / "weights.safetensors").is_file()
    assert (pre / "LICENSE-source.md").read_text() == "MIT License\n"

    fine = json.loads((REPO_ROOT / "train/configs/tiny.json").read_text())
    fine_path = tmp_path / "fine.json"
    fine_path.write_text(json.dumps({**fine, "init_from": str(pre)}))
    out = run_cli(
        "train",
        "--data",
        str(synthetic_corpus),
        "--config",
        str(fine_path),
        "--out",
        str(tmp_path / "art"),
        "--work-dir",
        str(tmp_path / "fw"),
        "--no-eval",
        "--quiet",
        check=True,
    )
    assert f"starting from the pretrained weights in {pre}" in out.stdout

    # another vocabulary (min_freq): its rows are mapped by token from the pretrained vocabulary kept beside
    # the weights (tests/test_conala.py); without that vocabulary, refused with a clear message
    assert (pre / "vocab.json").is_file()
    (pre / "vocab.json").unlink()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**fine, "init_from": str(pre), "min_freq": 1}))
    bad = run_cli(
        "train",
        "--data",
        str(synthetic_corpus),
        "--config",
        str(other),
        "--out",
        str(tmp_path / "art2"),
        "--work-dir",
        str(tmp_path / "fw2"),
        "--no-eval",
        "--quiet",
    )
    assert bad.returncode == 2 and "another vocabulary" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow  # two real training runs
def test_a_pack_trains_without_the_corpus(library, synthetic_corpus, tmp_path):
    pack = tmp_path / "pack.json.gz"
    config = tiny_pretrain_config(tmp_path)
    run_cli(
        "train.pretrain",
        "--data",
        str(synthetic_corpus),
        "--config",
        config,
        "--source",
        str(library),
        "--pack-out",
        str(pack),
        check=True,
    )
    run_cli(
        "train.pretrain",
        "--pack",
        str(pack),
        "--out",
        str(tmp_path / "p"),
        "--work-dir",
        str(tmp_path / "w"),
        "--quiet",
        check=True,
    )
    info = json.loads((tmp_path / "p" / "pretrained.json").read_text())
    assert info["data"]["functions"] == 5 and info["epochs"] == 1
    missing = run_cli("train.pretrain", "--config", config)
    assert missing.returncode == 2 and "--data" in missing.stderr and "Traceback" not in missing.stderr


def test_an_archive_is_read_once_and_its_own_licence_kept(library, tmp_path, monkeypatch):
    import tarfile

    from e2p.model import pretraining as pretrain

    (library / "sub").mkdir(exist_ok=True)
    (library / "sub" / "LICENSE").write_text("a vendored file's licence\n")
    archive = tmp_path / "lib.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(library, arcname="Python-master")
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(pretrain.tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    data = read_functions(archive, HELD_OUT)
    assert len(opened) == 1
    assert data.licence == "MIT License\n"  # the top folder's, not the vendored one
    assert [fn.name for fn in data.functions] == [fn.name for fn in read_functions(library, HELD_OUT).functions]
    assert read_functions(library, HELD_OUT).licence == "MIT License\n"


def test_a_pack_written_before_an_option_was_retired_loads_where_it_is_neutral(tmp_path):
    import gzip

    from e2p.model.pretraining import load_pack, save_pack
    from e2p.model.training import Prepared

    vocab = Vocab.build([["def", "f"]], min_freq=1)
    prep = Prepared([], [], [], None, vocab, vocab, [([4], [5])], [([4], [5])])
    path = tmp_path / "pack.json.gz"
    save_pack(path, prep, TrainConfig(max_epochs=3), {"functions": 1})
    data = json.loads(gzip.decompress(path.read_bytes()))
    for retired, expect in (({"ema_decay": 0.0, "bf16": False, "neighbours": 1}, None), ({"augment": 2}, "augment")):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump({**data, "config": {**data["config"], **retired}}, f)
        if expect is None:
            loaded, cfg, stats = load_pack(path)
            assert cfg == TrainConfig(max_epochs=3) and loaded.train_pairs == [([4], [5])] and stats == {"functions": 1}
        else:
            with pytest.raises(E2PError, match=f"{expect} 2, which was measured and not kept"):
                load_pack(path)
