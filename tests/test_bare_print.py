"""Labelled prints reduced to their value where the prompt asks to print a value (e2p.answer.bare_print)."""

import pytest

from e2p.answer.bare_print import bare_prints, only_asked_prints, wants_bare_value


@pytest.mark.parametrize(
    "code, bare",
    [
        ('q = 47 // 5\nprint("Quotient is:", q)\n', "q = 47 // 5\nprint(q)\n"),
        ('print("Product of integers in list : " + str(res))\n', "print(res)\n"),
        ("arr = [1]\nprint(f'the largest element in the array is {max(arr)}')\n", "arr = [1]\nprint(max(arr))\n"),
        ('def f(n):\n    print("Sum is", n + 1)\nf(2)\n', "def f(n):\n    print(n + 1)\nf(2)\n"),
    ],
)
def test_a_labelled_print_becomes_a_print_of_its_value(code, bare):
    assert bare_prints(code) == bare


@pytest.mark.parametrize(
    "code",
    [
        'print("hello")\n',  # text only: the text is what it prints
        "print(total)\n",  # already the value
        'print("a", x, "b", y)\n',  # two values: a sentence the value alone would not replace
        'print(f"{n} x {i} = {n * i}")\n',  # a table row, every field a value
        'print(f"Area is {a:.2f}")\n',  # the format is part of the answer
        'print("Sum:", s, sep="")\n',  # keywords change what it prints
        "print(\n",  # does not parse
    ],
)
def test_other_prints_are_left_as_they_are(code):
    assert bare_prints(code) is None


def test_only_a_prompt_that_asks_to_print_and_quotes_nothing_wants_the_bare_value():
    assert wants_bare_value("write a program to print the sum of the digits of 12345")
    assert wants_bare_value("write a program to display the largest of 3, 9 and 4")
    assert not wants_bare_value('write a program to check whether 17 is prime and print "prime" or "not prime"')
    assert not wants_bare_value("write a python function to return the sum of two numbers")
    # a quoted value to work on is not text to print; text after "print" or "in the form" is
    assert wants_bare_value('write a python program to print the number of words in the sentence "the quick fox"')
    assert not wants_bare_value('write a python program to print "Hello, World!"')
    assert not wants_bare_value('write a program to print the table of 7, one line each in the form "7 x 1 = 7"')


def test_the_example_the_model_follows_prints_the_value_where_the_prompt_asks_for_one(tiny_default_artifacts):
    from dataclasses import replace

    from e2p.answer.generator import Generator
    from e2p.data.corpus import Example
    from e2p.data.placeholders import restore_code
    from e2p.data.tokenizers import decode_code

    g = Generator(tiny_default_artifacts)
    labelled = Example("print the quotient of 9 by 2", 'a = 9\nb = 2\nq = a // b\nprint("Quotient is:", q)\n', 1)

    def followed(prompt: str) -> str:
        source = replace(g.bundle.featurizer.source(prompt), neighbour=labelled)
        return decode_code(restore_code(g._followed(source, prompt), source.slots))

    assert followed("write a program to print the quotient of 47 by 5").endswith("print(q)\n")
    assert "47" in followed("write a program to print the quotient of 47 by 5")  # the prompt's values too
    assert 'print("Quotient is:", q)' in followed(
        'write a program that prints "Quotient is:" and the quotient of 47 by 5'
    )


def test_only_the_values_the_prompt_names_are_printed():
    program = "a = 47\nb = 5\nquotient = a // b\nremainder = a % b\nprint(quotient)\nprint(remainder)\n"
    got = only_asked_prints("print the quotient of 47 divided by 5", program)
    assert got == program.replace("print(remainder)\n", "")
    # both named, or neither: nothing changes
    assert only_asked_prints("print the quotient and the remainder of 47 and 5", program) is None
    assert only_asked_prints("divide 47 by 5", program) is None
