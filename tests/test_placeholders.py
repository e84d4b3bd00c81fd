"""Copy placeholders: prompt values become NUM/STR/NAME slots in prompt and code, and come back."""

from __future__ import annotations

import ast

import pytest

from e2p.placeholders import (
    MAX_SLOTS,
    Slots,
    abstract_code,
    abstract_example,
    abstract_prompt,
    all_placeholders,
    restore_code,
)
from e2p.tokenizers import code_tokens, decode_code

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")


def _ast(code: str) -> str:
    return ast.dump(ast.parse(code))


def test_numbers_both_ways():
    text, code, slots = abstract_example("print the sum of 15 and 27", "print(15 + 27)")
    assert text == "print the sum of NUM0 and NUM1"
    assert slots.numbers == ["15", "27"] and not slots.strings and not slots.names
    assert code == ["print", "(", "NUM0", "+", "NUM1", ")"]
    restored = restore_code(code, slots)
    assert restored == code_tokens("print(15 + 27)")
    assert decode_code(restored) == "print(15 + 27)\n"


def test_new_values_reach_the_code():
    _, slots = abstract_prompt("print the sum of 123456 and 0.5")
    out = decode_code(restore_code(["print", "(", "NUM0", "+", "NUM1", ")"], slots))
    assert out == "print(123456 + 0.5)\n"


def test_repeated_number_reuses_its_slot():
    text, slots = abstract_prompt("add 3 to 3 and then 4")
    assert text == "add NUM0 to NUM0 and then NUM1"
    assert slots.numbers == ["3", "4"]


def test_numbers_inside_words_are_not_numbers():
    text, slots = abstract_prompt("write a python3 program for list2 and 1st item")
    assert slots.numbers == []
    assert "NUM" not in text


def test_quoted_strings_both_ways():
    prompt = "write a program to print \"hello world\" and 'bye'"
    code = 'print("hello world")\nprint(\'bye\')\nprint("hello")'
    text, tokens, slots = abstract_example(prompt, code)
    assert text == "write a program to print STR0 and STR1"
    assert slots.strings == ["hello world", "bye"]
    assert ['«"', "STR0", '»"'] == tokens[2:5]
    assert "STR1" in tokens
    assert "hello" in tokens  # a different string is left alone
    assert _ast(decode_code(restore_code(tokens, slots))) == _ast(code)


def test_string_placeholder_outside_a_string_becomes_a_literal():
    _, slots = abstract_prompt('print "it is done"')
    out = decode_code(restore_code(["print", "(", "STR0", ")"], slots))
    assert ast.literal_eval(ast.parse(out).body[0].value.args[0]) == "it is done"


def test_identifier_names_become_name_slots():
    text, tokens, slots = abstract_example(
        "write a function to append 5 to my_list", "my_list.append(5)\nprint(my_list)"
    )
    assert text == "write a function to append NUM0 to NAME0"
    assert slots.names == ["my_list"]
    assert tokens == ["NAME0", ".", "append", "(", "NUM0", ")", "<nl>", "print", "(", "NAME0", ")"]
    assert decode_code(restore_code(tokens, slots)) == "my_list.append(5)\nprint(my_list)\n"


@pytest.mark.parametrize("name", ["my_list", "bcdToDecimal", "num1", "is_valid", "_private_x"])
def test_identifier_like_words(name):
    _, slots = abstract_prompt(f"write a function that uses {name} here")
    assert slots.names == [name]


def test_plain_english_and_builtins_are_not_names():
    prompt = (
        "Write a Python program to print the sum of a list using len and sorted isinstance "
        "True None str dict range the numbers"
    )
    text, slots = abstract_prompt(prompt)
    assert not slots
    assert text == prompt


def test_placeholder_words_in_the_prompt_are_not_renamed():
    text, slots = abstract_prompt("use NUM0 and NAME1")
    assert slots.names == []


def test_restore_with_an_unknown_placeholder_leaves_an_identifier():
    slots = Slots(numbers=["1"])
    tokens = ["print", "(", "NUM0", "+", "NUM3", "+", "NAME7", "+", "STR5", ")"]
    out = decode_code(restore_code(tokens, slots))
    tree = ast.parse(out)
    assert {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} == {
        "print",
        "NUM3",
        "NAME7",
        "STR5",
    }
    assert "1" in out


def test_abstract_code_without_slots_is_identity():
    tokens = code_tokens("x = my_list[15]\nprint('hi')")
    assert abstract_code(tokens, Slots()) == tokens
    assert restore_code(tokens, Slots()) == tokens


def test_slot_limit():
    numbers = " ".join(str(10 + i) for i in range(MAX_SLOTS + 3))
    text, slots = abstract_prompt(f"add {numbers}")
    assert len(slots.numbers) == MAX_SLOTS
    assert str(10 + MAX_SLOTS) in text  # the ones past the limit stay as they are


def test_all_placeholders():
    names = all_placeholders()
    assert len(names) == len(set(names)) == 3 * MAX_SLOTS
    assert {"NUM0", "STR0", "NAME0", f"NUM{MAX_SLOTS - 1}"} <= set(names)


def test_mapping():
    slots = Slots(numbers=["1", "2"], strings=["s"], names=["my_x"])
    assert slots.mapping() == {"NUM0": "1", "NUM1": "2", "STR0": "s", "NAME0": "my_x"}
    assert slots and not Slots()


@pytest.mark.slow
def test_round_trip_over_the_full_train_split(full_corpus):
    train = full_corpus.split("train")
    failures, used = [], 0
    for ex in train:
        text, tokens, slots = abstract_example(ex.prompt, ex.code)
        used += any(t in slots.mapping() for t in tokens)
        try:
            same = _ast(decode_code(restore_code(tokens, slots))) == _ast(ex.code)
        except SyntaxError:
            same = False
        if not same:
            failures.append(ex.line)
    assert len(train) > 2000
    assert used > 100  # placeholders do occur in the code
    assert failures == []
