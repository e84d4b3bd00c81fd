"""What the Generate view shows around an answer: the display text of each code token (for the
confidence and origin marks), the line about which programs are run where, and the one sentence
an error becomes (used by every view).

No Streamlit, no torch, no model.
"""

from __future__ import annotations

from ..answer.answer_policy import RUN_BUDGET_S
from ..errors import E2PError
from ..sandbox.runner import NOT_RUN

_NO_SPACE_BEFORE = (")", "]", "}", ",", ":", ".", "(", "[")


def result_key(result) -> str:
    """The same for a result before and after the app explains it (its widget and run keys, such as
    `example_run_<key>`, must not change)."""
    return f"{abs(hash((result.prompt, result.code, result.seconds)))}"


def confidence_pieces(tokens: list[str]) -> list[str]:
    """Display text for each model code token, for `code_html.confidence_html` and `origin_view.origins_html`.

    Joined, the pieces read like the code: `<nl>` is a newline, the indentation of a line goes
    before its first token, `##x` continues an identifier, string tokens show their quotes.
    `<indent>` / `<dedent>` show as small marks (they are predictions that can be wrong too).
    """
    pieces: list[str] = []
    depth, line_start, prev, in_string = 0, True, "", False
    for tok in tokens:
        if in_string and not (tok.startswith("»") or tok in ("<nl>", "<indent>", "<dedent>", "<eos>")):
            pieces.append(tok)  # string pieces carry their own spaces
            continue
        in_string = False
        if tok == "<nl>":
            pieces.append("\n")
            line_start, prev = True, ""
            continue
        if tok in ("<indent>", "<dedent>"):
            depth = depth + 1 if tok == "<indent>" else max(0, depth - 1)
            pieces.append("⇥" if tok == "<indent>" else "⇤")
            continue
        if tok == "<eos>":
            pieces.append("⏎end")
            continue
        if tok.startswith("##") and len(tok) > 2:
            text, space = tok[2:], False
        elif tok.startswith("«") and len(tok) > 1:
            text, space, in_string = tok[1:], bool(prev) and prev not in "([{.", True
        elif tok.startswith("»") and len(tok) > 1:
            text, space = tok[1:], False
        else:
            text = tok
            space = bool(prev) and prev not in "([{." and tok not in _NO_SPACE_BEFORE
        if line_start:
            text, line_start = "    " * depth + text, False
        elif space:
            text = " " + text
        pieces.append(text)
        prev = text[-1:] if text else prev
    return pieces


def error_sentence(err: BaseException, where: str = "") -> str:
    """What the app shows for an exception: an E2PError's own message (it is written for users),
    anything else one plain sentence with no internals (the traceback goes to the server's log)."""
    if isinstance(err, E2PError):
        return str(err)
    where = f" {where}" if where else ""
    return f"Something went wrong{where}; the details are in the server's log. " "Try again, or reload the page."


def execution_notice(status, warnings=()) -> str | None:
    """The one line the app shows where programs cannot be run (a `sandbox.SandboxStatus`);
    None where they can, or where a result's `warnings` already say so."""
    if status.available or any(w.startswith(NOT_RUN) for w in warnings):
        return None
    return f"{status.notice[0].upper()}{status.notice[1:]}."


def execution_text(status, limits: str) -> str:
    """What the app runs, where and with which limits, for `sandbox.sandbox_status()` and
    `sandbox.describe_limits()`."""
    never = 'Your prompt itself is never run as code. "Model score" and "first candidate that ' 'parses" run nothing.'
    if not status.available:
        return "No program is run on this server: answers are chosen without running anything. " + never
    return (
        "To choose an answer, the default and most other choices run candidate programs on this "
        "server: the model's outputs, and for the retrieval baseline also the nearest training "
        "programs, some with numbers and quoted values from your prompt put in as literals "
        f"({status.mode}). {limits[:1].upper()}{limits[1:]}; "
        f"each request gets at most {RUN_BUDGET_S:g} s of runs in all. " + never
    )
