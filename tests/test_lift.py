"""A script example followed as the function it computes (e2p.answer.lift)."""

import ast

import pytest

from e2p.answer.lift import as_function, function_name
from e2p.sandbox.runner import run_code, sandbox_status

PROMPT = "write a python function to return the largest number in a list"
needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason="the sandbox (bubblewrap) cannot isolate here"
)


def _call(code: str, name: str, *args):
    """What the lifted function returns for `args`, run in the sandbox (rule-made code never runs here)."""
    result = run_code(f"{code}\nprint(repr({name}(*{args!r})))\n")
    assert result.ok, result.stderr
    return ast.literal_eval(result.stdout.strip())


@needs_sandbox
def test_a_scripts_literal_input_becomes_the_parameter_and_its_printed_value_the_return():
    script = 'list1 = [10, 20, 4, 45, 99]\nlist1.sort()\nprint("Largest element is:", list1[-1])\n'
    code = as_function(PROMPT, script)
    assert code == "def largest_number_list(list1):\n    list1.sort()\n    return list1[-1]"
    assert _call(code, "largest_number_list", [3, 9, 2]) == 9


def test_input_reading_an_f_string_and_the_other_prints():
    script = (
        'string = input("Please Enter your Own String : ")\n'
        "upper = string.upper()\n"
        'print("Original", string)\n'
        'print(f"Upper: {upper}")\n'
    )
    code = as_function("write a python function to convert a string to uppercase", script)
    assert code == "def convert_string_uppercase(string):\n    upper = string.upper()\n    return upper"


@needs_sandbox
def test_a_final_if_that_prints_only_text_returns_its_condition():
    script = 'my_str = "abba"\nif my_str == my_str[::-1]:\n    print("palindrome")\nelse:\n    print("not")\n'
    code = as_function("write a python function to check whether a string is a palindrome", script)
    assert _call(code, "check_whether_string", "abba") is True
    assert _call(code, "check_whether_string", "abc") is False


@needs_sandbox
def test_a_loop_printing_each_row_returns_the_rows_and_work_buffers_stay_in_the_body():
    script = (
        "X = [[1, 2], [3, 4]]\nY = [[5, 6], [7, 8]]\nresult = []\n"
        "for i in range(len(X)):\n    result.append([a + b for a, b in zip(X[i], Y[i])])\n"
        "for r in result:\n    print(r)\n"
    )
    code = as_function("write a python function to add two matrices", script)
    params = [a.arg for a in ast.parse(code).body[0].args.args]
    assert params == ["X", "Y"]  # `result = []` is built, not given
    assert _call(code, "add_two_matrices", [[1, 1]], [[2, 2]]) == [[3, 3]]


@needs_sandbox
def test_a_name_read_and_never_bound_is_a_parameter_and_a_last_assignment_the_answer():
    code = as_function("write a function to convert fahrenheit to celsius", "celsius = (fahrenheit - 32) * 5 / 9\n")
    assert _call(code, "convert_fahrenheit_celsius", 212) == 100


def test_what_cannot_be_lifted_is_left_alone():
    assert as_function(PROMPT, "def f(x):\n    return x\n") is None  # already a function
    assert as_function(PROMPT, "class A:\n    pass\n") is None
    assert as_function(PROMPT, 'print("hello")\n') is None  # no input
    assert as_function(PROMPT, "a = [1, 2]\nprint(a)\nb = 3\n") is None  # the last line prints nothing
    assert as_function(PROMPT, "a = (\n") is None  # does not parse


def test_the_name_comes_from_the_prompts_words():
    assert function_name("Write a Python function to find the sum of digits") == "sum_digits"
    assert function_name("write a python function to") == "answer"
    assert function_name("write a function to return the max") == "max_"  # not a builtin's name


def test_a_name_never_bound_beside_inputs_the_script_sets_is_a_slip_not_a_parameter():
    script = "raw = [3, 1, 2]\nsorted_list = sorted(raw)\nprint(soreted_list)\n"
    code = as_function("write a function to sort a list", script)
    assert code.startswith("def sort_list(raw):")


@needs_sandbox
def test_beside_a_text_to_work_on_a_table_string_stays_in_the_body():
    script = (
        'punctuations = "!()-[]{};:,."\nmy_str = "Hello!!!, he said."\n'
        'out = ""\nfor char in my_str:\n    if char not in punctuations:\n        out = out + char\nprint(out)\n'
    )
    code = as_function("write a python function to remove the punctuation from a string", script)
    assert code.startswith("def remove_punctuation_string(my_str):\n    punctuations = ")
    assert _call(code, "remove_punctuation_string", "a, b!") == "a b"
