import json

import pytest

import e2p.evaluation.metrics as metrics
from e2p.evaluation.metrics import (
    ReferenceProfile,
    bleu,
    bleu_tokens,
    evaluate,
    exact_match,
    normalise_stdout,
    profile_references,
    sentence_bleu,
)

SNIPPET = "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n"


def test_bleu_tokens_layout_tokens_and_dropped_comments():
    code = "if x:\n    y = 1  # set y\n\n# alone\nz = 'a b'"
    assert bleu_tokens(code) == [
        "if", "x", ":", "<nl>",
        "<indent>", "y", "=", "1", "<nl>",
        "<dedent>", "z", "=", "'a b'", "<nl>",
    ]  # fmt: skip


def test_bleu_tokens_falls_back_to_regex_when_tokenize_fails():
    assert bleu_tokens("s = '''never closed\nx = (1,") == [
        "s", "=", "'", "'", "'", "never", "closed", "x", "=", "(", "1", ",",
    ]  # fmt: skip


def test_bleu_tokens_keeps_stray_characters_but_not_blank_error_tokens():
    assert bleu_tokens("x = 'abc\n") == ["x", "=", "'", "abc", "<nl>"]


def test_bleu():
    assert bleu([SNIPPET], [SNIPPET]) == pytest.approx(100.0)
    assert sentence_bleu(SNIPPET, SNIPPET) == pytest.approx(100.0)
    # Comments, blank lines and spacing are not tokens.
    assert bleu(["x = 1  # one\n\n\ny=x+2\n"], ["x = 1\ny = x + 2"]) == pytest.approx(100.0)
    disjoint = "while True:\n    break\n"
    assert bleu([disjoint], [SNIPPET]) < 5
    assert sentence_bleu(disjoint, SNIPPET) < 5
    assert bleu([], []) == 0.0
    with pytest.raises(ValueError):
        bleu(["x"], [])


def test_exact_match_ignores_formatting():
    messy = "def add(a,b) :\n  return a+b # sum\nprint( add(1,2) )"
    assert exact_match(messy, SNIPPET)
    assert exact_match("x = 'a'", 'x = "a"')
    assert not exact_match("x = 1", "x = 2")
    assert not exact_match("x = (", "x = (")


# ----------------------------------------------------------------------------- EVAL.md's stated choices


def test_eval_md_whitespace_only_error_tokens_are_left_out_of_bleu():
    import io
    import tokenize

    code = "x = 'abc\n"  # a stray quote: Python's tokenize reports the space before it as an ERRORTOKEN
    raw = [t for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.ERRORTOKEN]
    assert any(t.string.isspace() for t in raw)  # the case exists, so the check below has teeth
    assert not any(tok.isspace() or tok == "" for tok in bleu_tokens(code))
    assert bleu_tokens(code) == ["x", "=", "'", "abc", "<nl>"]


class _Fake:
    """A sandbox that answers from a script: one list of RunResults per call of run_many."""

    def __init__(self, monkeypatch, *answers):
        from e2p.sandbox.runner import RunResult, SandboxStatus

        self.calls, self.answers = [], [[RunResult(rc, out, "", False) for rc, out in a] for a in answers]
        monkeypatch.setattr(metrics, "sandbox_status", lambda: SandboxStatus(True, "", "fake"))
        monkeypatch.setattr(metrics, "run_many", self.run_many)

    def run_many(self, codes, timeout, workers):
        self.calls.append(list(codes))
        answer = self.answers[len(self.calls) - 1]
        assert len(answer) == len(codes)
        return answer


def test_eval_md_the_runnable_set_needs_two_clean_runs_of_the_reference(monkeypatch):
    refs = ["steady", "crashes the second time", "prints differently", "crashes", "silent"]
    fake = _Fake(
        monkeypatch, [(0, "1\n"), (0, "1\n"), (0, "a\n"), (1, ""), (0, "")], [(0, "1\n"), (1, ""), (0, "b\n"), (0, "")]
    )
    profiles = profile_references(refs)
    assert fake.calls == [refs, ["steady", "crashes the second time", "prints differently", "silent"]]
    assert [p.runs for p in profiles] == [True, False, True, False, True]
    assert [p.executable for p in profiles] == [True, False, False, False, False]


def test_eval_md_trailing_empty_output_lines_are_dropped(monkeypatch):
    profiles = [ReferenceProfile(runs=True, executable=True, stdout="3")] * 4
    _Fake(monkeypatch, [(0, "3\n\n  \n\n"), (0, "3  \r\n"), (0, "\n3\n"), (0, "3\n\n4\n")])
    report = evaluate(["print(3)"] * 4, ["print(3)"] * 4, profiles)
    assert [e["exec_match"] for e in report.per_example] == [True, True, False, False]  # leading ones count


def test_normalise_stdout():
    assert normalise_stdout("a  \r\nb\t\n\n\n") == "a\nb"
    assert normalise_stdout("\nx") == "\nx"
    assert normalise_stdout("  \n\n") == ""


REFS = [
    "print(sum(range(5)))",  # executable
    "import random\nprint(random.random())",  # runs, output differs each time
    "x = 1 / 0",  # fails
    "x = 3",  # runs, prints nothing
    "for i in range(3):\n    print(i)",  # executable
]
HYPS = [
    "print(10)",  # same output, different code
    "import random\nprint(random.random())",  # exact
    "print(1)",  # never run: its reference fails
    "x = (",  # does not parse
    "for i in range(3):\n  print(i + 1)",  # runs, wrong output
]


def test_profile_references():
    profiles = profile_references(REFS)
    assert [p.runs for p in profiles] == [True, True, False, True, True]
    assert [p.executable for p in profiles] == [True, False, False, False, True]
    assert profiles[0].stdout == "10" and profiles[4].stdout == "0\n1\n2"


def test_evaluate_end_to_end():
    report = evaluate(HYPS, REFS)
    assert report.n == 5
    assert report.parse_rate == pytest.approx(0.8)
    assert report.exact_match == pytest.approx(0.2)
    assert (report.n_runs, report.runs_rate) == (4, pytest.approx(0.75))
    assert (report.n_executable, report.exec_match) == (2, pytest.approx(0.5))
    assert [e["runs"] for e in report.per_example] == [True, True, None, False, True]
    assert [e["exec_match"] for e in report.per_example] == [True, None, None, None, False]
    assert [e["exact"] for e in report.per_example] == [False, True, False, False, False]
    assert report.per_example[1]["bleu"] == pytest.approx(100.0)
    assert 0 < report.bleu < 100

    summary = json.loads(json.dumps(report.to_dict()))
    assert "per_example" not in summary and summary["n_executable"] == 2
    assert len(report.to_dict(per_example=True)["per_example"]) == 5


def test_evaluate_runs_only_parsing_hypotheses_whose_reference_runs(monkeypatch):
    ran = []
    real_run_many = metrics.run_many

    def spy(codes, timeout, workers):
        ran.extend(codes)
        return real_run_many(codes, timeout, workers)

    monkeypatch.setattr(metrics, "run_many", spy)
    profiles = [
        ReferenceProfile(runs=True, executable=True, stdout="3"),
        ReferenceProfile(runs=False, executable=False, stdout=""),
        ReferenceProfile(runs=True, executable=False, stdout=""),
    ]
    report = evaluate(["print(1 + 2)  ", "print(3)", "print(("], ["", "", ""], profiles)
    assert ran == ["print(1 + 2)  "]
    assert [e["runs"] for e in report.per_example] == [True, None, False]
    assert report.exec_match == 1.0 and report.runs_rate == 0.5


def test_evaluate_empty_and_mismatched():
    report = evaluate([], [])
    assert report.to_dict() == {
        "n": 0, "bleu": 0.0, "parse_rate": 0.0, "exact_match": 0.0, "exec_match": 0.0,
        "n_executable": 0, "runs_rate": 0.0, "n_runs": 0, "runs_unavailable": None,
    }  # fmt: skip
    with pytest.raises(ValueError):
        evaluate(["x"], ["x", "y"])
    with pytest.raises(ValueError):
        evaluate(["x"], ["x"], profiles=[])


def test_without_a_sandbox_nothing_runs_and_runs_are_unavailable(sandbox_off, tmp_path):
    from e2p.evaluation import metrics

    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\nprint(1)"
    profiles = metrics.profile_references([code])
    report = metrics.evaluate([code], [code], profiles)
    assert not marker.exists()
    assert profiles[0].runs is None
    assert report.exec_match is None and report.runs_rate is None
    assert report.n_runs == 0 and "switched off" in report.runs_unavailable
    assert report.parse_rate == 1.0 and report.exact_match == 1.0
