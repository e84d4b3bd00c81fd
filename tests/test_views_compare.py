"""Which models the app serves (`e2p.views.compare`), and one prompt through each of them."""

import dataclasses
import shutil

from e2p.answer.bundle import REQUIRED
from e2p.answer.generator import Generator
from e2p.answer.policy import Policy
from e2p.views.compare import compare_row, shipped_models


def test_the_main_model_comes_first_then_each_model_folder_inside(tmp_path):
    for folder in (tmp_path, tmp_path / "original", tmp_path / "conala"):
        folder.mkdir(exist_ok=True)
        for name in REQUIRED:
            (folder / name).write_text("{}")
    (tmp_path / "pretrained").mkdir()  # weights for training only: no policy, not a model the app serves
    (tmp_path / "pretrained" / "weights.safetensors").write_text("")
    models = shipped_models(tmp_path)
    assert [(m.key, m.name) for m in models] == [
        ("main", "Main model"),
        ("conala", "CoNaLa model"),
        ("original", "Original design"),
    ]
    assert models[0].folder == tmp_path and all(m.about for m in models)
    assert shipped_models(tmp_path / "missing") == []


def test_the_shipped_artifacts_are_three_models():
    keys = [m.key for m in shipped_models("artifacts")]
    assert keys[0] == "main" and "original" in keys


def test_a_row_holds_the_answer_its_run_and_where_its_tokens_came_from(tiny_default_artifacts, sandbox_off):
    gen = Generator(tiny_default_artifacts)
    model = shipped_models(tiny_default_artifacts)[0]
    row = compare_row(model, gen, "write a python function to add two numbers", sandbox_reason="switched off")
    assert row.result is not None and row.result.prompt == "write a python function to add two numbers"
    assert row.seconds > 0 and row.status.kind == "not run" and "sandbox is off" in row.status.text
    assert row.origins == "" or "%" in row.origins


def test_a_snippet_model_says_snippet_not_run(tiny_default_artifacts, tmp_path):
    folder = tmp_path / "conala"
    shutil.copytree(tiny_default_artifacts, folder)
    dataclasses.replace(Policy.load(folder, "rebuild"), runs=False).save(folder)
    gen = Generator(folder, check=False)
    row = compare_row(shipped_models(tmp_path)[0], gen, "convert a list `x` to a string")
    assert row.status.kind == "not run" and row.status.text.startswith("snippet: not run")
    assert row.result.run is None


def test_an_answer_its_rule_did_not_run_is_run_in_the_sandbox(tiny_default_artifacts, monkeypatch):
    """The original design ranks by score and runs nothing: Compare runs its answer (sandbox only)."""
    from e2p.views import compare

    ran = []
    monkeypatch.setattr(compare, "run_code", lambda code, timeout: ran.append(code) or sandbox_result("7\n"))
    gen = Generator(tiny_default_artifacts)
    monkeypatch.setattr(gen, "generate", lambda prompt, **kw: made_up(prompt))
    row = compare_row(shipped_models(tiny_default_artifacts)[0], gen, "write a program to print 7")
    assert ran == ["print(7)\n"] and row.run.stdout == "7\n" and row.status.text == "ran and printed 7"
    off = compare_row(shipped_models(tiny_default_artifacts)[0], gen, "print 7", sandbox_reason="switched off")
    assert ran == ["print(7)\n"] and off.status.kind == "not run"  # where the sandbox cannot isolate: nothing runs


def sandbox_result(stdout):
    from e2p.sandbox.runner import RunResult

    return RunResult(returncode=0, stdout=stdout, stderr="", timed_out=False)


def made_up(prompt):
    from models import made_up_result

    return made_up_result(["print", "7"], ["print", "(", "7", ")"], prompt=prompt, code="print(7)\n")
