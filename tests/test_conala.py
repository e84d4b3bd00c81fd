"""CoNaLa, the published yardstick: its split rule, its own BLEU, the placeholders of backticked values,
the snippet policy (nothing runs, answers labelled "snippet: not run"), `evaluate` on dev, and the
pretrained weights carried over to another vocabulary. The corpus is tests/fixtures/conala_mini.jsonl,
a handful of CoNaLa-like lines written for these tests."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import sacrebleu
from conftest import REPO_ROOT, eval_key

from e2p.answer.policy import SNIPPET_LABEL, Policy
from e2p.data.corpus import load_corpus
from e2p.data.placeholders import abstract_example, abstract_prompt, restore_code
from e2p.data.tokenizers import decode_code
from e2p.errors import E2PError
from e2p.evaluation.metrics import conala_bleu, conala_tokens

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "conala_mini.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def conala_split(prompt: str) -> str:
    """EVAL.md's CoNaLa rule, apart from e2p: dev where the prompt key's sha256 % 10 == 0."""
    return "dev" if int(hashlib.sha256(eval_key(prompt).encode()).hexdigest(), 16) % 10 == 0 else "train"


# ----------------------------------------------------------------------------- the split


def test_the_conala_rule_splits_a_tenth_as_dev_and_has_no_test_split():
    corpus = load_corpus(FIXTURE, "conala")
    dev, train = corpus.split("dev"), corpus.split("train")
    assert {ex.prompt for ex in dev} == {r["prompt"] for r in ROWS if conala_split(r["prompt"]) == "dev"}
    assert len(dev) == 3 and len(train) == 11
    assert corpus.repaired["python2_print"] == 1  # `print type(obj)`, cleaned as in the main corpus
    assert all(conala_split(ex.prompt) == "train" for ex in train)
    assert corpus.split("valid") == dev  # what training tunes on
    assert corpus.split("test") == []  # measured from outside the project
    assert corpus.stats()["splits"] == {"train": 11, "dev": 3} and corpus.stats()["split_rule"] == "conala"
    # the same file by the main corpus's rule: train/valid/test, as before
    assert load_corpus(FIXTURE).splits == ("train", "valid", "test")
    with pytest.raises(E2PError, match="unknown split rule"):
        load_corpus(FIXTURE, "random")


def test_training_refuses_a_corpus_split_by_another_rule():
    from e2p.model.training import TrainConfig, prepare

    with pytest.raises(E2PError, match="split by the 'eval' rule"):
        prepare(load_corpus(FIXTURE), TrainConfig(split="conala", retrieval=False))


# ----------------------------------------------------------------------------- CoNaLa's BLEU


def test_conala_tokens_follow_the_definition():
    assert conala_tokens("df.groupBy(\"a\")['x_y']  + 12") == [
        "df", ".", "group", "By", "(", "`", "a", "`", ")", "[", "`", "x_y", "`", "]", "+", "12",
    ]  # fmt: skip
    assert conala_tokens("HTTPServer(getValue2)") == ["HTTPServer", "(", "get", "Value2", ")"]
    assert conala_tokens("  a\n\tb  ") == ["a", "b"]


@pytest.mark.parametrize(
    "hyps, refs, expected",
    [
        # p1..p4 = 4/5, 3/4, 2/3, 1/2; c = r: BLEU = (1/5) ** (1/4)
        (["a b c d e"], ["a b c d f"], 100 * 0.2**0.25),
        # clipped counts: `a` twice in the hypothesis, once in the reference; the same precisions
        (["a a b c d"], ["a b c d e"], 100 * 0.2**0.25),
        # every n-gram matches, but c = 4 < r = 6: brevity penalty exp(1 - 6/4)
        (["a b c d"], ["a b c d e f"], 100 * math.exp(-0.5)),
        # longer hypotheses are not penalised: p1..p4 = 4/6, 3/5, 2/4, 1/3
        (["a b c d x y"], ["a b c d"], 100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25),
        # pooled over the corpus: p1 = 4/6, p2 = 3/4, p3 = 2/2, p4 = 1/1; c = r = 6
        (["a b c d", "x y"], ["a b c d", "z w"], 100 * (4 / 6 * 3 / 4) ** 0.25),
        # no 4-gram at all: no smoothing, so 0
        (["a b c"], ["a b c"], 0.0),
        # quotes are one token, a backtick, whichever the quote
        (['x = "hi"'], ["x = 'hi'"], 100.0),
        ([""], ["a b c d"], 0.0),
        ([], [], 0.0),
    ],
)
def test_conala_bleu_on_hand_computed_cases(hyps, refs, expected):
    assert conala_bleu(hyps, refs) == pytest.approx(expected, abs=1e-9)


def test_conala_bleu_agrees_with_sacrebleu_unsmoothed_on_its_tokens():
    hyps = ["sorted(my_list, reverse=True)", "df.drop('b', axis=1)", "s.lower().split()", "x"]
    refs = ["my_list.sort(reverse=True)", "df.drop(['b'], axis=1)", "s.lower()", "len(x)"]
    joined = lambda codes: [" ".join(conala_tokens(c)) for c in codes]  # noqa: E731
    expected = sacrebleu.corpus_bleu(joined(hyps), [joined(refs)], tokenize="none", smooth_method="none").score
    assert conala_bleu(hyps, refs) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError):
        conala_bleu(["x"], [])


# ----------------------------------------------------------------------------- values in backticks


def test_backticked_values_become_placeholders_and_reach_the_code():
    text, tokens, slots = abstract_example("format datetime `now` as `%Y-%m-%d`", "now.strftime('%Y-%m-%d')")
    assert text == "format datetime NAME0 as STR0"
    assert slots.names == ["now"] and slots.strings == ["%Y-%m-%d"]
    assert tokens == ["NAME0", ".", "strftime", "(", "«'", "STR0", "»'", ")"]
    # another prompt's values go back into the same code
    _, other = abstract_prompt("format datetime `then` as `%H:%M`")
    assert decode_code(restore_code(tokens, other)) == "then.strftime('%H:%M')\n"


def test_short_plain_names_and_numerals_in_backticks_are_slots_expressions_keep_their_text():
    text, slots = abstract_prompt("convert list `l` of `3` items in dataframe `df`")
    assert text == "convert list NAME0 of NUM0 items in dataframe NAME1" and slots.names == ["l", "df"]
    text, tokens, slots = abstract_example("zip lists `[1, 2]` and `['a']`", "zip([1, 2], ['a'])")
    assert text == "zip lists `[NUM0, NUM1]` and `[ STR0 ]`"  # the expression's own values are slots
    assert tokens == ["zip", "(", "[", "NUM0", ",", "NUM1", "]", ",", "[", "«'", "STR0", "»'", "]", ")"]
    # a builtin, keyword or module in backticks is no slot: it could change what the code means
    for word in ("list", "None", "os"):
        assert abstract_prompt(f"use `{word}` here")[1].names == []


# ----------------------------------------------------------------------------- the snippet policy


def test_the_conala_preset_ranks_without_running():
    from e2p.artifact.export import load_preset

    cfg, policy = load_preset(REPO_ROOT / "train/configs/conala.json")
    assert cfg.split == "conala" and not policy.runs
    assert policy.default.rerank == "score" and policy.own_is_default and not policy.default.fallback
    assert cfg.init_from == "artifacts/pretrained"


def test_a_policy_that_runs_nothing_keeps_it_in_its_file(tmp_path):
    policy = Policy.from_preset({"runs": False}, max_len=32)
    assert not policy.runs
    policy.save(tmp_path)
    assert json.loads((tmp_path / "policy.json").read_text())["runs"] is False
    assert Policy.load(tmp_path, "REBUILD") == policy
    # a policy file without the key (every artifact before this one) runs its candidates
    assert Policy.load(REPO_ROOT / "artifacts", "REBUILD").runs
    assert "runs" not in json.loads((REPO_ROOT / "artifacts/policy.json").read_text())


def test_the_run_panel_labels_a_snippet_not_run():
    from e2p.views.run_panel import run_status

    status = run_status("df.drop('b', axis=1)", None, snippet=True)
    assert status.kind == "not run" and status.text.startswith(f"{SNIPPET_LABEL}: ") and not status.ok
    assert run_status("x = 1", None).text.startswith("not run: press Run")  # an artifact that runs


@pytest.fixture(scope="module")
def snippet_artifacts(tiny_default_artifacts, tmp_path_factory):
    """The tiny default-like model as a CoNaLa artifact: its config says CoNaLa's split, its policy runs nothing."""
    from e2p.artifact.export import refresh_manifest

    folder = tmp_path_factory.mktemp("snippet") / "artifacts"
    shutil.copytree(tiny_default_artifacts, folder)
    config = json.loads((folder / "config.json").read_text())
    config["train"]["split"] = "conala"
    (folder / "config.json").write_text(json.dumps(config))
    policy = Policy.load(folder, "REBUILD")
    Policy(policy.default, policy.ranker, policy.example_pool, policy.model_offset, runs=False).save(folder)
    refresh_manifest(folder)
    return folder


@pytest.mark.parametrize("rerank", ["run", "ranker"])
def test_a_snippet_artifact_runs_nothing(snippet_artifacts, rerank, monkeypatch):
    from e2p.answer.generator import Generator
    from e2p.sandbox import runner as sandbox

    def refuse(*args, **kwargs):
        raise AssertionError("a snippet was run")

    monkeypatch.setattr(sandbox, "_run", refuse)
    result = Generator(snippet_artifacts).generate("decode bytes `data` using 'utf-8'", rerank=rerank)
    assert all(c.runs is None for c in result.candidates) and result.run is None
    assert not any("not run" in w for w in result.warnings)  # no sandbox notice: snippets never run


def test_generate_and_evaluate_on_a_snippet_artifact(snippet_artifacts, capsys, monkeypatch):
    from e2p.answer import generator
    from e2p.cli import main
    from e2p.evaluation import metrics

    monkeypatch.setattr(generator, "runner_for", lambda *a, **k: pytest.fail("a snippet was run"))
    run_many = metrics.run_many
    monkeypatch.setattr(metrics, "run_many", lambda codes, *a: run_many(codes, *a) if not codes else pytest.fail())
    assert main(["generate", "append 5 to list `numbers`", "--artifacts", str(snippet_artifacts)]) == 0
    assert f"e2p: note: {SNIPPET_LABEL}" in capsys.readouterr().err
    args = ["evaluate", "--artifacts", str(snippet_artifacts), "--data", str(FIXTURE), "--allow-other-corpus"]
    assert main(args + ["--no-ranker-row"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["split"] == "dev" and report["n"] == 3  # dev by default
    assert {"model", "retrieval"} <= set(report["systems"])
    for row in report["systems"].values():
        assert isinstance(row["conala_bleu"], float) and row["runs_rate"] == "unavailable"
    assert "CoNaLa BLEU" in out
    assert main(args + ["--split", "test"]) == 2
    assert "measured from outside the project" in capsys.readouterr().err


# ----------------------------------------------------------------------------- pretrained weights


def test_pretrained_rows_are_carried_over_to_another_vocabulary_by_token(tmp_path):
    import torch

    from e2p.data.vocab import Vocab
    from e2p.model.training import PRETRAINED_VOCAB, TrainConfig, load_pretrained, make_model, save_weights

    cfg = TrainConfig(d_model=16, n_heads=2, enc_layers=1, dec_layers=1, d_ff=32, max_src=40, max_tgt=30)
    old = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "x", "print", "(", ")"])
    new = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "df", "print", ")", "y"])
    torch.manual_seed(0)
    pre = make_model(cfg, len(old), len(old))
    folder = tmp_path / "pretrained"
    folder.mkdir()
    save_weights(pre, folder / "weights.safetensors")
    info = {"vocab_sha256": old.digest(), "model": pre.config.to_dict()}
    (folder / "pretrained.json").write_text(json.dumps(info))
    fresh = make_model(replace_max(cfg, 60), len(new), len(new))  # other lengths: positions are computed
    with pytest.raises(E2PError, match="another vocabulary"):  # without the pretrained vocabulary
        load_pretrained(fresh, folder, new)
    old.save(folder / PRETRAINED_VOCAB)
    before = fresh.src_embed.weight.detach().clone()
    load_pretrained(fresh, folder, new)
    assert fresh.pretrained_tokens == 6  # the 4 specials, print and )
    rows = fresh.src_embed.weight.detach()
    for tok in ("<unk>", "print", ")"):
        assert torch.equal(rows[new.index[tok]], pre.src_embed.weight.detach()[old.index[tok]].float())
    assert torch.equal(rows[new.index["df"]], before[new.index["df"]])  # a new token keeps its initialisation
    assert fresh.lm_head.weight is fresh.tgt_embed.weight  # still tied
    layer = "encoder.0.ff.fc1.weight"  # every other tensor is the pretrained one
    assert torch.equal(fresh.state_dict()[layer], pre.state_dict()[layer])


def replace_max(cfg, max_tgt: int):
    from dataclasses import replace

    return replace(cfg, max_tgt=max_tgt)


def test_the_app_labels_a_snippet_and_runs_nothing(snippet_artifacts, monkeypatch):
    from test_app import generate, open_expander, start_app

    from e2p.sandbox import runner as sandbox

    def refuse(*args, **kwargs):
        raise AssertionError("a snippet was run")

    at = start_app(snippet_artifacts, monkeypatch)
    monkeypatch.setattr(sandbox, "_run", refuse)  # after the page's first draw (the sandbox's own probe)
    generate(at, "append 5 to list `numbers`")
    open_expander(at, "example_open")  # the followed example is drawn (and would be run) when opened
    shown = [box.value.replace("\\", "") for box in at.info]  # the app escapes Markdown
    # the answer's status, and the followed example's: neither is run
    assert sum(text.startswith("Snippet: not run: it uses names defined elsewhere") for text in shown) == 2, shown
