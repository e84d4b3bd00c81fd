"""One answer to "does this code parse": e2p.syntax, used by every module that asks."""

import subprocess
import sys
import warnings

import pytest

from e2p.syntax import compiles, parse_tree, parses, syntax_error


def test_parses():
    assert parses("def add(a, b):\n    return a + b\n")
    assert not parses("def f(:\n")
    assert not parses("x = 1\x00")  # ValueError, not SyntaxError
    assert not parses("-" * 200_000 + "1")  # too deep for the parser
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an invalid escape only warns; it still parses
        assert parses("x = '\\d'")


def test_syntax_error_none_for_valid_code():
    assert syntax_error("def f(x):\n    return x + 1\n") is None
    assert syntax_error("") is None


def test_syntax_error_reports_line():
    line, message = syntax_error("x = 1\ny = 2\nif x\n    pass\n")
    assert line == 3
    assert message


def test_syntax_error_catches_return_outside_function():
    line, message = syntax_error("x = 1\nreturn x\n")
    assert line == 2
    assert "return" in message


def test_syntax_error_null_byte_has_a_line():
    line, message = syntax_error("x = 1\ny = 2\x00\n")
    assert line == 2
    assert message


def test_syntax_error_ignores_warnings():
    assert syntax_error('s = "\\d"\n') is None


def test_parses_is_ast_parse_and_compiles_is_compile():
    code = "x = 1\nreturn x\n"  # only the compiler rejects it
    assert parses(code) and parse_tree(code) is not None
    assert not compiles(code) and syntax_error(code)[0] == 2
    assert compiles("def f(x):\n    return x\n") and parse_tree("def (") is None


def test_compiles_is_quiet_even_where_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compiles("s = '\\d'\n") and parses("s = '\\d'\n")


def test_every_module_asks_the_same_helper():
    from e2p.answer import edit
    from e2p.data import corpus
    from e2p.evaluation import metrics
    from e2p.model import pretraining as pretrain

    assert corpus.compiles is compiles and edit.compiles is compiles
    assert metrics.parses is parses and metrics.parse_tree is parse_tree
    assert edit.parse_tree is parse_tree and pretrain.parse_tree is parse_tree


@pytest.mark.parametrize("module", ["e2p.answer.edit"])
def test_editing_does_not_import_the_evaluation(module):
    code = f"import sys, {module}; print('e2p.evaluation.metrics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
