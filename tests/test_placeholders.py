"""Copy placeholders: prompt values become NUM/STR/NAME slots in prompt and code, and come back."""

from __future__ import annotations

import ast

import pytest
from conftest import ast_dump

from e2p.data.placeholders import (
    MAX_NUMBER_CHARS,
    MAX_SLOTS,
    Slots,
    abstract_code,
    abstract_example,
    abstract_prompt,
    all_placeholders,
    restore_code,
)
from e2p.data.tokenizers import code_tokens, decode_code, split_string

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")


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
    assert ast_dump(decode_code(restore_code(tokens, slots))) == ast_dump(code)


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
            same = ast_dump(decode_code(restore_code(tokens, slots))) == ast_dump(ex.code)
        except SyntaxError:
            same = False
        if not same:
            failures.append(ex.line)
    assert len(train) > 2000
    assert used > 100  # placeholders do occur in the code
    assert failures == []


# --- hostile prompt values: they reach code only as whole literals, numerals or safe names ---

PAYLOAD = '\\\' + __import__("os").system("x") + \\\''
HOSTILE = [
    "\\",
    "abc\\",
    PAYLOAD,
    " + __import__(chr(111)).system(chr(120)))#",
    "{__import__('os').system('x')}",
    "{eval(chr(49))}}{",
    'say "hi"\nexec("import os")',
    "nul\x00byte\r\t\x0b",
    "\\N{BULLET}\\x41\\u2028\u2028",
    "'''\"\"\"",
    "\ud800",
]
FORBIDDEN = {"__import__", "eval", "exec", "os", "system", "chr"}


def identifiers(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        for field in ("id", "attr", "arg", "name"):
            value = getattr(node, field, None)
            if isinstance(value, str):
                out.add(value)
        if isinstance(node, ast.alias):
            out.add(node.asname or node.name)
    return out


def without_strings(tree: ast.AST) -> str:
    """The code with every string constant emptied: what is left is what a value could turn into code."""
    tree = ast.parse(ast.unparse(tree))  # a copy
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            node.value = type(node.value)()
    return ast.unparse(tree)


def assert_values_only_in_strings(code: str, values: list[str], allowed: set[str] = frozenset()) -> ast.AST | None:
    """Where `code` parses, the quoted values appear in its tree only inside string constants."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None  # code that does not parse never runs
    assert not (identifiers(tree) & (FORBIDDEN - set(allowed))), code
    stripped = without_strings(tree)
    for value in values:
        if len(value) >= 3:
            assert value not in stripped, (value, code)
    return tree


def constants(tree: ast.AST) -> list:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_quoted_value_fills_a_whole_literal_by_repr(value):
    slots = Slots(strings=[value, "ok"])
    cases = {
        "alone": ["print", "(", "STR0", ")"],
        "whole literal": ["print", "(", '«"', "STR0", '»"', ")"],
        "two strings on one line": ["print", "(", '«"', "STR0", '»"', ",", "«'", "STR1", "»'", ")"],
        "f-string": ["print", "(", '«f"', "STR0", '»"', ")"],
        "raw": ["x", "=", '«r"', "STR0", '»"'],
        "bytes": ["x", "=", '«b"', "STR0", '»"'],
        "triple": ["x", "=", '«"""', "STR0", '»"""'],
        "after an f-string": ["x", "=", '«f"', "{", "y", "}", '»"', "STR0"],
    }
    for name, tokens in cases.items():
        code = decode_code(restore_code(tokens, slots))
        tree = assert_values_only_in_strings(code, [value])
        if name != "bytes":  # b"..." of non-ASCII text does not compile: nothing to check
            assert tree is not None, (name, code)
            assert value in constants(tree), (name, code)
            assert not any(isinstance(n, ast.Call) for n in ast.walk(tree) if n is not tree.body[0].value), (name, code)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_quoted_value_is_never_pasted_inside_a_literal(value):
    slots = Slots(strings=[value])
    for tokens in (
        ['«"', "Hello", " ", "STR0", '»"'],
        ['«f"', "Sum", ":", " {", "STR0", "}", '»"'],
        ["«f'", "{", "STR0", "}", "»'"],
        ['«"', "\\", "STR0", '»"', ",", "x"],
        ['«"', "STR0", "STR0", '»"'],
        ['«"""', "STR0", '»"'],  # not its closing quote: still inside
    ):
        assert restore_code(tokens, slots) == tokens  # the placeholder stays as text
        assert_values_only_in_strings(decode_code(tokens), [value])
    # a line end closes a literal (decode_code closes it there): what follows is outside again
    restored = restore_code(['«"', "STR0", "<nl>", "STR0"], slots)
    assert restored[:3] == ['«"', "STR0", "<nl>"] and restored[3:] == split_string(repr(value))


def test_the_literal_keeps_its_prefix_and_quotes_where_they_read_the_value_unchanged():
    def restored(value, *tokens):
        return decode_code(restore_code(list(tokens), Slots(strings=[value])))

    assert restored("hello world", '«f"', "STR0", '»"') == 'f"hello world"\n'
    assert restored("a{b}", '«f"', "STR0", '»"') == "'a{b}'\n"
    assert restored("it's", "«'", "STR0", "»'") == '"it\'s"\n'
    assert restored("a\\b", '«r"', "STR0", '»"') == "'a\\\\b'\n"
    assert restored("héllo", '«b"', "STR0", '»"') == "'héllo'\n"


def test_old_injection_through_two_strings_on_one_line_is_gone():
    # Pasted raw, the backslash ended the first literal early and the second value became code.
    slots = Slots(strings=["\\", " + __import__(chr(111)).system(chr(120)))#"])
    code = decode_code(restore_code(["print", "(", '«"', "STR0", '»"', ",", '«"', "STR1", '»"', ")"], slots))
    tree = ast.parse(code)
    assert [type(n).__name__ for n in tree.body[0].value.args] == ["Constant", "Constant"]
    assert [a.value for a in tree.body[0].value.args] == slots.strings


def test_fuzzed_token_sequences_never_turn_a_value_into_code():
    import random

    rng = random.Random(9)
    alphabet = [
        "print",
        "(",
        ")",
        "+",
        ",",
        "=",
        "x",
        ".",
        "<nl>",
        "<indent>",
        '«"',
        '«f"',
        "«'",
        '«r"',
        '«b"',
        '«"""',
        '«rb"',
        '»"',
        "»'",
        '»"""',
        "{",
        "}",
        " {",
        "\\",
        "STR0",
        "STR1",
        "NUM0",
        "NAME0",
        "Sum",
        ":",
    ]
    parsed = 0
    for _ in range(6000):
        tokens = [rng.choice(alphabet) for _ in range(rng.randint(1, 10))]
        for value in (PAYLOAD, HOSTILE[3], HOSTILE[4]):
            slots = Slots(numbers=["15"], strings=[value, "\\"], names=["my_var"])
            parsed += assert_values_only_in_strings(decode_code(restore_code(tokens, slots)), [value]) is not None
    assert parsed > 1000  # enough of them parse for the check to mean something


def test_long_and_odd_numbers_stay_out_of_the_code():
    huge = "9" * 2000
    text, slots = abstract_prompt(f"print the square of {huge} and 5")
    assert slots.numbers == ["5"] and huge in text
    for bad in (huge, "1e5", "0x1F", "1_000", "١٢", "1.2.3", "-4", "5 + 1"):
        code = decode_code(restore_code(["print", "(", "NUM0", ")"], Slots(numbers=[bad])))
        assert code == "print(NUM0)\n"
    longest = "1" * MAX_NUMBER_CHARS
    assert decode_code(restore_code(["x", "=", "NUM0"], Slots(numbers=[longest]))) == f"x = {longest}\n"


@pytest.mark.parametrize(
    "name",
    [
        "__import__",
        "eval",
        "exec",
        "os",
        "sys",
        "subprocess",
        "__my_var",
        "__class__",
        "match",
        "print",
        "open",
        "None",
    ],
)
def test_unsafe_names_are_neither_slots_nor_restored(name):
    _, slots = abstract_prompt(f"write a function that uses {name} here")
    assert slots.names == []
    code = decode_code(restore_code(["NAME0", "(", ")"], Slots(names=[name])))
    assert code == "NAME0()\n"
    for odd in ("a b", "x);import os;(", "é_x", "my-var", ""):
        assert decode_code(restore_code(["NAME0"], Slots(names=[odd]))) == "NAME0\n"


def test_numbers_and_names_inside_a_literal_stay_inside_it():
    slots = Slots(numbers=["15"], names=["my_var"])
    tokens = ['«"', "(", "NUM0", ")", "NAME0", '»"', "+", '«f"', "{", "NAME0", "}", '»"']
    code = decode_code(restore_code(tokens, slots))
    tree = ast.parse(code)
    assert code == '"(15)my_var" + f"{my_var}"\n'
    assert identifiers(tree) == {"my_var"}
