"""Token <-> id maps: specials first, reserved placeholders, min_freq, save/load, bad files."""

from __future__ import annotations

import json

import pytest

from e2p.data.placeholders import all_placeholders
from e2p.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab
from e2p.errors import E2PError

SEQUENCES = [
    ["print", "(", "x", ")"],
    ["print", "(", "y", ")", "<nl>"],
    ["x", "=", "1", "<nl>", "print", "(", "x", ")"],
    ["rare", "print"],
]


@pytest.fixture
def vocab():
    return Vocab.build(SEQUENCES, min_freq=2, reserved=all_placeholders())


def test_specials_first(vocab):
    assert vocab.tokens[:4] == list(SPECIALS) == [PAD, UNK, BOS, EOS]
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    assert vocab.encode([PAD, UNK, BOS, EOS]) == [0, 1, 2, 3]


def test_reserved_placeholders_follow_the_specials(vocab):
    reserved = all_placeholders()
    assert vocab.tokens[4 : 4 + len(reserved)] == reserved
    assert all(p in vocab for p in reserved)  # present though never seen


def test_min_freq(vocab):
    assert "rare" not in vocab and "y" not in vocab and "=" not in vocab and "1" not in vocab
    assert {"print", "(", ")", "x", "<nl>"} <= set(vocab.tokens)
    frequent = vocab.tokens[4 + len(all_placeholders()) :]
    assert frequent == ["print", "(", ")", "x", "<nl>"]  # by count, then alphabetically
    assert len(Vocab.build(SEQUENCES, min_freq=1)) == 4 + len({t for s in SEQUENCES for t in s})
    assert len(Vocab.build(SEQUENCES, min_freq=100)) == 4


def test_reserved_is_not_repeated():
    v = Vocab.build([["NUM0", "NUM0", "x", "x"]], min_freq=1, reserved=["NUM0", "NUM0", PAD])
    assert v.tokens == [PAD, UNK, BOS, EOS, "NUM0", "x"]


def test_unknown_maps_to_unk(vocab):
    assert vocab.encode(["print", "never-seen", "rare"]) == [
        vocab.index["print"],
        vocab.unk_id,
        vocab.unk_id,
    ]
    assert vocab.decode([vocab.index["x"], 10**6, -1]) == ["x", UNK, UNK]


def test_encode_decode(vocab):
    seq = ["print", "(", "x", ")", "NUM0"]
    assert vocab.decode(vocab.encode(seq)) == seq


def test_save_load_same_ids(vocab, tmp_path):
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded.tokens == vocab.tokens
    assert loaded.index == vocab.index
    assert loaded.encode(["print", "x", "zzz"]) == vocab.encode(["print", "x", "zzz"])


def test_save_load_unicode(tmp_path):
    v = Vocab.build([["🐍", "中文", '«"', '»"']], min_freq=1)
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").tokens == v.tokens


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2, 3]",
        b'{"words": ["<pad>"]}',
        b'{"tokens": 5}',
        json.dumps({"tokens": ["a", "b"]}).encode(),  # no specials
        json.dumps({"tokens": [PAD, UNK, BOS, EOS, "x", "x"]}).encode(),  # a repeated token
    ],
)
def test_bad_file_raises_e2p_error(tmp_path, content):
    path = tmp_path / "vocab.json"
    path.write_bytes(content)
    with pytest.raises(E2PError):
        Vocab.load(path)


def test_missing_file_and_directory_raise_e2p_error(tmp_path):
    with pytest.raises(E2PError):
        Vocab.load(tmp_path / "missing.json")
    with pytest.raises(E2PError):
        Vocab.load(tmp_path)


def test_constructor_checks():
    with pytest.raises(E2PError):
        Vocab(["x", PAD, UNK, BOS, EOS])
    with pytest.raises(E2PError):
        Vocab([PAD, UNK, BOS, EOS, "x", "x"])
