import json

import numpy as np
import pytest

from e2p.answer.ranking import RANKER_FEATURES, Ranker, RankerFeatures, content_words
from e2p.artifact.ranker_fit import fit_ranker
from e2p.data.corpus import Example
from e2p.data.retrieval import Retriever

MEMORY = [
    Example("write a python function to add two numbers", "def add(a, b):\n    return a + b\n", 1),
    Example("write a python program to add two numbers", "a = 1\nb = 2\nprint(a + b)\n", 4),
    Example(
        "write a program to read a number from the user and print its square", "n = int(input())\nprint(n * n)\n", 7
    ),
    Example("write a python function to reverse a string", "def reverse(s):\n    return s[::-1]\n", 10),
    Example("write a program to print the numbers from 1 to 10", "for i in range(1, 11):\n    print(i)\n", 13),
    Example(
        "write a python class with a method that greets", "class Greeter:\n    def hi(self):\n        print('hi')\n", 16
    ),
]


def test_content_words_split_identifiers_and_drop_filler():
    assert content_words("def reverseString(my_text): return my_text[::-1]") >= {
        "reverse",
        "str",
        "my",
        "text",
    }  # stemmed: string -> str
    assert "python" not in content_words("write a python program")


def test_feature_rows_describe_what_the_code_does():
    maker = RankerFeatures(MEMORY)
    hits = Retriever(MEMORY).nearest("write a python function to add two numbers", 3)
    rows = maker.rows("write a python function to add two numbers", hits)
    assert rows.shape == (3, len(RANKER_FEATURES))
    col = {name: i for i, name in enumerate(RANKER_FEATURES)}
    by_code = {ex.code: row for (ex, _), row in zip(hits, rows)}
    function, program = by_code[MEMORY[0].code], by_code[MEMORY[1].code]
    assert function[col["function_agrees"]] == 1 and program[col["function_agrees"]] == 0
    assert function[col["defines_function"]] == 1 and function[col["returns"]] == 1
    assert rows[0, col["gap_to_best"]] == 0 and np.all(rows[:, col["gap_to_best"]] <= 0)


def test_a_prompt_that_asks_for_input_agrees_with_code_that_reads_it():
    maker = RankerFeatures(MEMORY)
    prompt = "write a program that reads a number from the user and prints its square"
    hits = [(MEMORY[2], 0.5), (MEMORY[4], 0.4)]
    rows = maker.rows(prompt, hits)
    col = RANKER_FEATURES.index("input_agrees")
    assert rows[0, col] == 1 and rows[1, col] == 0


def test_ranker_round_trips_and_refuses_other_features(tmp_path):
    ranker = Ranker(weights=[0.5] * len(RANKER_FEATURES), bias=1.0, fitted_on=9)
    ranker.save(tmp_path / "ranker.json")
    assert Ranker.load(tmp_path / "ranker.json") == ranker
    # the offset of the model's own output is the artifact's policy's (policy.json), not the fit's
    assert "model_offset" not in json.loads((tmp_path / "ranker.json").read_text())
    data = json.loads((tmp_path / "ranker.json").read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="other features"):
        Ranker.load(tmp_path / "bad.json")


OPS = [
    ("add two numbers", "+"),
    ("subtract two numbers", "-"),
    ("multiply two numbers", "*"),
    ("divide two numbers", "/"),
    ("raise a number to a power", "**"),
    ("find the remainder of two numbers", "%"),
    ("floor divide two numbers", "//"),
    ("compare two numbers", ">"),
    ("check whether two numbers are equal", "=="),
    ("shift a number left by another", "<<"),
]


def _pairs():
    """Each task twice: as a function (def ... return) and as a program (values, print). Prompt
    similarity finds the same task in the other form; its code is the wrong shape."""
    out = []
    for i, (task, op) in enumerate(OPS):
        out.append(Example(f"write a python function to {task}", f"def solve(a, b):\n    return a {op} b\n", 10 * i))
        out.append(Example(f"write a python program to {task}", f"a = 7\nb = 3\nprint(a {op} b)\n", 10 * i + 5))
    return out


def test_fit_ranker_learns_from_the_train_split_only(monkeypatch):
    from e2p.artifact import ranker_fit

    examples = _pairs()
    held_out = [ex for i, ex in enumerate(examples) if i in (0, 5, 8, 13)]  # both forms, other tasks
    train = [ex for ex in examples if ex not in held_out]
    compared = []
    real = ranker_fit.sentence_bleu
    monkeypatch.setattr(ranker_fit, "sentence_bleu", lambda hyp, ref: compared.append((hyp, ref)) or real(hyp, ref))
    ranker = fit_ranker(train, k=4)
    by_code = {ex.code: ex for ex in train}
    assert ranker.fitted_on == len(train) and compared
    assert all(hyp in by_code and ref in by_code for hyp, ref in compared)  # train programs only
    assert all(by_code[hyp].key != by_code[ref].key for hyp, ref in compared)  # never its own prompt

    retriever, maker = Retriever(train), RankerFeatures(train)
    by_similarity, by_ranker = [], []
    for query in held_out:
        hits = retriever.nearest(query.prompt, 4)
        best = hits[int(np.argmax(ranker.scores(maker.rows(query.prompt, hits))))][0]
        by_similarity.append(real(hits[0][0].code, query.code))
        by_ranker.append(real(best.code, query.code))
    assert np.mean(by_ranker) > np.mean(by_similarity) + 20, (by_ranker, by_similarity)


def test_the_cli_offers_every_rerank_the_generator_knows():
    from e2p import commands, constants
    from e2p.answer import policy

    assert commands.RERANKS is constants.RERANKS  # one definition
    assert policy.RERANKS is constants.RERANKS


def test_the_cli_knows_its_choices_without_importing_torch():
    import subprocess
    import sys

    code = "import sys, e2p.cli; e2p.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_a_prompt_asking_for_a_function_is_answered_with_one():
    from e2p.answer.ranking import fits_request

    assert fits_request("write a python function to add", "def add(a, b):\n    return a + b\n")
    assert fits_request("Write a Function to add", "add = lambda a, b: a + b\n")
    assert not fits_request("write a python function to add two numbers", "print(1 + 2)\n")
    assert fits_request("write a program to add two numbers", "print(1 + 2)\n")


class _Hyp:
    score = 0.0


def _ranked(prompt, codes, values):
    from e2p.answer.answer_policy import rank
    from e2p.sandbox.runner import RunBudget, sandbox_status

    if not sandbox_status().available:
        pytest.skip(f"the ranker's order is checked by running candidates: {sandbox_status().reason}")
    rows = rank(prompt, [_Hyp() for _ in codes], codes, ["retrieval"] * len(codes), "ranker", values, RunBudget())
    return [cand for _, _, cand in rows]


def test_ranker_order_asks_for_what_the_prompt_asks():
    codes = ["print(2 * 3)\n", "def double(x):\n    return 2 * x\n", "def broken(:\n"]
    ranked = _ranked("write a python function to double a number", codes, [5.0, 1.0, 9.0])
    assert ranked[0].code == codes[1] and ranked[0].runs is True  # the function, though scored lower
    assert ranked[-1].code == codes[2] and not ranked[-1].parses
    assert [c.ranker_score for c in ranked] == [1.0, 5.0, 9.0]


def test_code_that_reads_input_wins_only_where_the_prompt_asks_for_input():
    codes = ["n = int(input())\nprint(2 * n)\n", "print(2)\n"]
    asked = _ranked("read a number from the user and print its double", codes, [3.0, 1.0])
    assert asked[0].code == codes[0] and asked[0].runs is None  # not run: stdin is closed there
    unasked = _ranked("print double of a number", codes, [3.0, 1.0])
    assert unasked[0].code == codes[1] and unasked[0].runs is True
    assert unasked[1].runs is False  # tried first, failed on the closed stdin
