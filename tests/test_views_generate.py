"""The Generate view's helpers: token display text, what is run where, and error sentences."""

from __future__ import annotations

from e2p.data.tokenizers import code_tokens, decode_code
from e2p.views import generate


def test_confidence_pieces_read_like_the_code():
    code = "def add_two(a, b):\n    return f'{a}' + \"x y\"\nprint(add_two(1, 2))\n"
    tokens = code_tokens(code)
    pieces = generate.confidence_pieces(tokens)
    assert len(pieces) == len(tokens)  # one piece per token: probabilities line up
    text = "".join(pieces).replace("⇥", "").replace("⇤", "")
    assert text.split("\n") == decode_code(tokens).rstrip("\n").split("\n")


def test_confidence_pieces_marks_layout_and_end():
    pieces = generate.confidence_pieces(["if", "x", ":", "<nl>", "<indent>", "pass", "<nl>", "<dedent>", "y", "<eos>"])
    assert pieces[3] == "\n" and pieces[4] == "⇥" and pieces[5] == "    pass"
    assert pieces[7] == "⇤" and pieces[8] == "y" and pieces[-1] == "⏎end"


def test_error_sentence_keeps_user_errors_and_hides_internals():
    from e2p.errors import E2PError

    assert generate.error_sentence(E2PError("the prompt is empty")) == "the prompt is empty"
    text = generate.error_sentence(KeyError("secret internals"), "in the Model view")
    assert text.startswith("Something went wrong in the Model view;") and "secret" not in text
    assert "KeyError" not in text and "\n" not in text


def test_execution_texts_follow_the_sandbox_status():
    from e2p.sandbox.runner import SandboxStatus

    off = SandboxStatus(False, "bubblewrap (bwrap) is not installed", "off")
    assert generate.execution_notice(off) == "Programs are not run: bubblewrap (bwrap) is not installed."
    said = ["programs are not run: bubblewrap (bwrap) is not installed; the answer was chosen without running"]
    assert generate.execution_notice(off, said) is None  # the result's warning says it already: one line
    assert generate.execution_text(off, "limits").startswith("No program is run on this server")
    on = SandboxStatus(True, "", "bubblewrap, then uid 65534")
    assert generate.execution_notice(on) is None
    text = generate.execution_text(on, "each program runs with no network")
    assert "(bubblewrap, then uid 65534)" in text and "Each program runs with no network" in text
    assert "never run as code" in text and "nearest training programs" in text


def test_a_results_key_survives_its_explanation_and_tells_answers_apart():
    from types import SimpleNamespace

    result_key = generate.result_key
    answer = SimpleNamespace(prompt="add two numbers", code="print(1 + 2)", seconds=0.41, attention=None)
    explained = SimpleNamespace(**{**vars(answer), "attention": [[0.5, 0.5]]})  # what the app keeps after
    assert result_key(explained) == result_key(answer)
    assert result_key(SimpleNamespace(**{**vars(answer), "prompt": "add three numbers"})) != result_key(answer)
    assert result_key(SimpleNamespace(**{**vars(answer), "seconds": 0.52})) != result_key(answer)  # asked again
