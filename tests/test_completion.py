"""The completion rule (e2p.answer.completion): a function defined and never called gets one printed
call with the prompt's values; code that already shows something, or calls what it defines, is left
as it is. Nothing here runs a program."""

from __future__ import annotations

import pytest

from e2p.answer.completion import completed, completion, prompt_values

ADD = "def add(a, b):\n    return a + b\n"


def test_the_prompts_numbers_become_the_arguments():
    assert completion(ADD, "write a python function to add 15 and 27") == "print(add(15, 27))"
    code, line = completed(ADD, "write a python function to add 15 and 27")
    assert line == "print(add(15, 27))" and code == ADD + "\nprint(add(15, 27))\n"


@pytest.mark.parametrize(
    "code, prompt, line",
    [
        # a quoted string for one parameter
        ("def rev(s):\n    return s[::-1]\n", "reverse the string 'abc'", "print(rev('abc'))"),
        # a list literal for one parameter
        ("def avg(nums):\n    return sum(nums) / len(nums)\n", "average of [1, 2, 3]", "print(avg([1, 2, 3]))"),
        # no value in the prompt: guessed from the parameter's name (a string for `text`)
        ("def count(text):\n    return len(text)\n", "count the letters of a text", "print(count('hello world'))"),
        # a function that prints is called, not printed
        ("def hello():\n    print('hi')\n", "print hi", "hello()"),
        # the helper the last function calls is not the one called
        (
            "def is_prime(n):\n    return n > 1\n\ndef primes(k):\n    return [i for i in range(k) if is_prime(i)]\n",
            "primes below 10",
            "print(primes(10))",
        ),
    ],
)
def test_what_is_called_and_with_what(code, prompt, line):
    assert completion(code, prompt) == line


@pytest.mark.parametrize(
    "code",
    [
        ADD + "print(add(1, 2))\n",  # it shows something already
        ADD + "x = add(1, 2)\n",  # it calls what it defines
        "x = 5\n",  # nothing to call
        "def f(:\n",  # does not parse
        "def ask():\n    return input('n? ')\n",  # reads input: stdin is closed in the sandbox
        "class A:\n    def m(self):\n        return 1\n",  # a method is not a function to call
        "def f(*, key):\n    return key\n",  # a keyword-only parameter without default
    ],
)
def test_code_that_needs_no_completion_is_left_alone(code):
    assert completion(code, "write a python function to add 15 and 27") is None
    assert completed(code, "anything") == (code, None)


def test_prompt_values_in_order_of_mention():
    values = prompt_values("sum of 3, 4.5 and [1, 2] then 'x'")
    assert values == {"numbers": [3, 4.5, 1, 2], "strings": ["x"], "lists": [[1, 2]]}
