"""Zero-filled results sized from the program's inputs (e2p.answer.buffers)."""

import ast

import pytest

from e2p.answer.buffers import sized_buffers
from e2p.sandbox.runner import run_code, sandbox_status


def _result(code: str):
    """The program's `result` after it runs, run in the sandbox (rule-made code never runs here)."""
    run = run_code(code + "\nprint(repr(result))\n")
    assert run.ok, run.stderr
    return ast.literal_eval(run.stdout.strip())


ADD = (
    "X = [[12, 7, 3], [4, 5, 6], [7, 8, 9]]\n"
    "Y = [[5, 8, 1], [6, 7, 3], [4, 5, 9]]\n"
    "result = [[0, 0, 0],\n          [0, 0, 0],\n          [0, 0, 0]]\n"
    "for i in range(len(X)):\n    for j in range(len(X[0])):\n        result[i][j] = X[i][j] + Y[i][j]\n"
)


@pytest.mark.skipif(not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here")
def test_a_matrix_result_takes_its_inputs_rows_and_row_length():
    code = sized_buffers(ADD)
    assert "result = [[0] * len(X[0]) for _ in range(len(X))]\n" in code
    two_by_two = code.replace("[[12, 7, 3], [4, 5, 6], [7, 8, 9]]", "[[1, 2], [3, 4]]").replace(
        "[[5, 8, 1], [6, 7, 3], [4, 5, 9]]", "[[5, 6], [7, 8]]"
    )
    assert _result(two_by_two) == [[6, 8], [10, 12]]  # the example's 3 x 3 would index past


def test_a_product_and_a_transpose_take_the_dimensions_that_match():
    product = "X = [[1, 2, 3], [4, 5, 6]]\nY = [[1, 2], [3, 4], [5, 6]]\nresult = [[0, 0], [0, 0]]\n"
    assert "result = [[0] * len(Y[0]) for _ in range(len(X))]" in sized_buffers(product)
    transpose = "X = [[12, 7], [4, 5], [3, 8]]\nresult = [[0, 0, 0], [0, 0, 0]]\n"
    assert "result = [[0] * len(X) for _ in range(len(X[0]))]" in sized_buffers(transpose)
    flat = "a = [4, 5, 6]\ncounts = [0, 0, 0]\n"
    assert sized_buffers(flat) == "a = [4, 5, 6]\ncounts = [0] * len(a)\n"


def test_nothing_to_size_gives_none():
    assert sized_buffers("a = [1, 2]\nb = [3, 4]\n") is None  # no zeros
    assert sized_buffers("result = [[0, 0], [0, 0]]\n") is None  # no input to size it from
    assert sized_buffers("X = [[1, 2, 3]]\nresult = [[0, 0], [0, 0]]\n") is None  # no size matches
    assert sized_buffers("x = (\n") is None
