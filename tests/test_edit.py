from e2p.answer.edit import adapt_literals, prompt_containers
from e2p.data.corpus import Example
from e2p.syntax import compiles

SUM = Example("write a program to print the sum of 3 and 4", "a = 3\nb = 4\nprint(a + b)\n", 1)


def test_the_prompts_numbers_replace_the_neighbours():
    code = adapt_literals("write a program to print the sum of 15 and 27", SUM)
    assert code is not None and compiles(code)
    namespace = {}
    exec(compile(code.replace("print", "result ="), "<edit>", "exec"), namespace)  # noqa: S102
    assert namespace["a"] == 15 and namespace["b"] == 27 and namespace["result"] == 42


def test_strings_and_names_are_carried_over():
    hello = Example('write a program that prints "hello there"', 'print("hello there")\n', 1)
    assert adapt_literals('write a program that prints "good night"', hello) == 'print("good night")\n'
    rev = Example("reverse the list my_items", "my_items.reverse()\nprint(my_items)\n", 1)
    edited = adapt_literals("reverse the list user_scores", rev)
    assert edited is not None and "user_scores.reverse()" in edited and "my_items" not in edited


def test_no_edit_where_the_values_do_not_line_up():
    # a different count of numbers: which goes where is unknown
    assert adapt_literals("print the sum of 1, 2 and 3", SUM) is None
    # the same values: nothing to change
    assert adapt_literals("print the sum of 3 and 4 please", SUM) is None
    # the program uses only one of its prompt's two numbers
    partial = Example("numbers divisible by 7 and 5", "print([i for i in range(100) if i % 7 == 0])\n", 1)
    assert adapt_literals("numbers divisible by 3 and 4", partial) is None
    # no values at all
    assert adapt_literals("print hello", Example("print hi", "print('hi')\n", 1)) is None


def test_named_inputs_take_the_prompts_values():
    from e2p.answer.edit import fill_inputs

    prime = "num = 407\nif num > 1:\n    print(num % 2 == 1)\n"
    assert fill_inputs("write a program to check whether 29 is prime", prime).startswith("num = 29\n")
    pair = "a = 3\nb = 4.5\nprint(a + b)\n"
    assert fill_inputs("print the sum of 15 and 27", pair) == "a = 15\nb = 27\nprint(a + b)\n"
    text = "s = 'abc'\nprint(s[::-1])\n"
    assert fill_inputs('reverse the string "hello world"', text) == "s = 'hello world'\nprint(s[::-1])\n"


def test_inputs_stay_where_the_counts_differ_or_nothing_changes():
    from e2p.answer.edit import fill_inputs

    assert fill_inputs("print the sum of 15 and 27", "a = 3\nprint(a)\n") is None
    assert fill_inputs("print the square", "num = 8\nprint(num ** 2)\n") is None
    assert fill_inputs("print the square of 8", "num = 8\nprint(num ** 2)\n") is None
    assert fill_inputs("print 5", "flag = True\nprint(flag)\n") is None  # booleans are not numbers
    assert fill_inputs("print 5", "def f(:\n") is None
    # only top-level names count: a constant inside a function is not an input
    assert fill_inputs("print 5", "def f():\n    n = 3\n    return n\n") is None


# --- hostile prompts: an edit changes values and names, never what the program does ---

import ast  # noqa: E402

import pytest  # noqa: E402
from test_placeholders import FORBIDDEN, assert_values_only_in_strings, constants, identifiers  # noqa: E402

from e2p.answer.edit import fill_inputs, same_shape  # noqa: E402
from e2p.data.placeholders import abstract_prompt  # noqa: E402

HELLO = Example('write a program that prints "hello there"', 'print("hello there")\n', 1)
TWO = Example('print "hello" and "world"', 'print("hello", "world")\n', 1)
FSTR = Example('print "hello world"', 'print(f"hello world")\n', 1)
REV = Example("reverse the list my_items", "my_items.reverse()\nprint(my_items)\n", 1)
INPUTS = "s = 'abc'\nprint(s[::-1])\n"

HOSTILE_PROMPTS = [
    'print "\\" and " + __import__(chr(111)).system(chr(120)))#"',  # compiled and ran before the fix
    'write a program that prints "\\ + __import__(chr(111)).system(chr(120)) + \\"',
    'print "{__import__(chr(111)).system(chr(120))}"',
    'print "a\\x00b\\n{}}{" and "nul\x00byte"',
    'write a program that prints "tab\there\\"',
    'print "line \\\\" and "\\N{BULLET}"',
]


def _check(prompt: str, code: str | None, original: str) -> None:
    if code is None:
        return
    tree = assert_values_only_in_strings(code, abstract_prompt(prompt)[1].strings)
    assert tree is not None and same_shape(original, code)
    assert identifiers(tree) <= identifiers(ast.parse(original))


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_hostile_quoted_values_become_string_constants(prompt):
    for example in (HELLO, TWO, FSTR):
        _check(prompt, adapt_literals(prompt, example), example.code)
    _check(prompt, fill_inputs(prompt, INPUTS), INPUTS)


def test_the_two_strings_injection_gives_two_constants():
    prompt = HOSTILE_PROMPTS[0]
    code = adapt_literals(prompt, TWO)
    assert code is not None
    assert constants(ast.parse(code)) == ["\\", " + __import__(chr(111)).system(chr(120)))#"]


def test_an_f_string_never_takes_a_value_with_braces():
    assert adapt_literals('print "{__import__(chr(111)).system(chr(120))}"', FSTR) is None  # would need a plain str
    assert adapt_literals('print "good night"', FSTR) == 'print(f"good night")\n'


def test_a_value_with_escapes_is_written_by_repr():
    code = adapt_literals('write a program that prints "tab\there\\"', HELLO)
    assert code == "print('tab\\there\\\\')\n"
    code = fill_inputs('reverse "a\\x00b"', INPUTS)
    assert code is not None and ast.parse(code).body[0].value.value == "a\\x00b"


@pytest.mark.parametrize("name", ["__import__", "eval", "exec", "os", "sys", "__my_items"])
def test_unsafe_names_never_replace_identifiers(name):
    assert adapt_literals(f"reverse the list {name}", REV) is None


def test_names_are_replaced_only_by_the_prompts_names():
    edited = adapt_literals("reverse the list user_scores", REV)
    assert edited is not None and identifiers(ast.parse(edited)) == {"user_scores", "reverse", "print"}
    assert not FORBIDDEN & identifiers(ast.parse(edited))


def test_same_shape_allows_only_constants_and_the_given_renames():
    assert same_shape("x = 1\nprint('a')\n", "x = 2.5\nprint('b')\n")
    assert same_shape("def f(my_a):\n    return my_a\n", "def f(new_a):\n    return new_a\n", {"my_a": "new_a"})
    assert not same_shape("my_a = 1\n", "new_a = 1\n")  # a rename the edit did not make
    assert not same_shape("my_a = 1\n", "other = 1\n", {"my_a": "new_a"})
    assert not same_shape("x = 'a'\n", "x = 'a' + y\n")  # new code
    assert not same_shape("x = 'a'\n", "x = f'{y}'\n")  # a literal became an f-string
    assert not same_shape("x.my_a()\n", "x.new_a()\n", {"my_a": "new_a"})  # attributes keep their names
    assert not same_shape("x = 1\n", "x = 1\ny = 2\n")
    assert not same_shape("x = 1\n", "x = (\n")


def test_fill_inputs_counts_offsets_in_bytes():
    code = 's = "ü"; n = 3\nprint(s, n)\n'
    assert fill_inputs('use "x" and 5', code) == "s = 'x'; n = 5\nprint(s, n)\n"


def test_a_written_out_list_fills_the_programs_list_input_whole():
    code = "list1 = [11, 5, 17]\ntotal = 0\nfor x in list1:\n    total += x\nprint(total)\n"
    filled = fill_inputs("write a program to print the sum of the list [4, 8, 15, 16, 23, 42]", code)
    assert filled == code.replace("[11, 5, 17]", "[4, 8, 15, 16, 23, 42]")
    # the list's numbers are its own: a number input elsewhere keeps its value
    assert fill_inputs("print the largest of [7, 3, 19, 4]", "n = 5\nlst = [1, 2]\nprint(max(lst), n)\n") == (
        "n = 5\nlst = [7, 3, 19, 4]\nprint(max(lst), n)\n"
    )


def test_containers_fill_by_kind_in_order_across_lines():
    code = "X = [[12, 7, 3],\n     [4, 5, 6]]\nY = [[5, 8, 1], [6, 7, 3]]\nd = {'p': 1}\nprint(X, Y, d)\n"
    filled = fill_inputs('add [[1, 2], [3, 4]] and [[5, 6], [7, 8]], then look up {"a": 10}', code)
    assert filled == 'X = [[1, 2], [3, 4]]\nY = [[5, 6], [7, 8]]\nd = {"a": 10}\nprint(X, Y, d)\n'


def test_prose_in_brackets_and_unmatched_counts_change_nothing():
    assert prompt_containers("sort the list [as given] (twice) {not a dict}") == []
    code = "a = [1]\nb = [2]\nprint(a + b)\n"
    assert fill_inputs("print the list [9, 9] doubled", code) is None  # one list for two inputs


def test_a_running_results_start_is_not_an_input():
    """`factorial = 1`, assigned again in the loop, is where the result starts, not a value to fill;
    leaving it out makes the counts agree, so the prompt's 6 fills `num`. A lone `b = 0` that is
    never assigned again is an input like any other. A start is never filled, even where counting it
    would make the counts agree: "from 1 to 10" is no `n = 1, sum_n = 10`."""
    program = "num = 7\nfactorial = 1\nfor i in range(1, num + 1):\n    factorial = factorial * i\nprint(factorial)\n"
    assert fill_inputs("write a python program to print the factorial of 6", program) == program.replace("7", "6")
    assert fill_inputs("print the sum of 3 and 5", "a = 1\nb = 0\nprint(a + b)\n") == "a = 3\nb = 5\nprint(a + b)\n"
    squares = "n = 10\nsum_n = 0\nfor i in range(1, n + 1):\n    sum_n += i ** 2\nprint(sum_n)\n"
    assert fill_inputs("print the sum of the squares of the numbers from 1 to 10", squares) is None
    assert fill_inputs("print the sum of the squares of the numbers up to 12", squares) == squares.replace("10", "12")


def test_numbers_written_as_a_list_in_prose_fill_the_programs_one_list():
    program = "a = [11, 22, 33, 44]\navg = sum(a) / len(a)\nprint(round(avg, 2))\n"
    got = fill_inputs("write a program to print the average of the numbers 10, 20, 30 and 45", program)
    assert got == program.replace("[11, 22, 33, 44]", "[10, 20, 30, 45]")
    assert fill_inputs("the mean of 4.5, -2 and 7", program) == program.replace("[11, 22, 33, 44]", "[4.5, -2, 7]")
    # a range is no list, nor are numbers the program has inputs of its own for
    assert fill_inputs("print the odd numbers from 1 to 15", "nums = [1, 2, 3]\nprint(nums)\n") is None
    assert fill_inputs("add 4 and 8", "k = 3\nnums = [1, 2, 3]\nprint(sum(nums) + k)\n") is None


def test_numbers_in_prose_are_read_as_python_reads_them():
    program = "a = [11, 22, 33]\nprint(sum(a) / len(a))\n"
    assert fill_inputs("the average of 007, 8 and 9", program) == program.replace("11, 22, 33", "7, 8, 9")
    assert fill_inputs("the average of 10, 20 and 30.", program) == program.replace("11, 22, 33", "10, 20, 30")
    assert fill_inputs("the average of 1,000 and 2,000", program) is None  # two numbers, not a list of four
    assert fill_inputs("the average of 1e5, 2 and 3", program) is None  # not a list of 2 and 3


def test_a_written_out_list_fills_the_list_a_top_level_call_is_shown_with():
    program = "def smallest(x):\n    return min(x)\nprint(smallest([2, 4, 5, 7, 98]))\n"
    got = fill_inputs("print the minimum of the list [9, 4, 7]", program)
    assert got == "def smallest(x):\n    return min(x)\nprint(smallest([9, 4, 7]))\n"
    # a named list input is filled in its place and the call's own list left alone
    named = "nums = [1, 2]\nprint(max(nums), max([5, 6]))\n"
    assert fill_inputs("print the largest of the list [9, 4, 7]", named) == named.replace("[1, 2]", "[9, 4, 7]")


def test_a_sentence_fills_the_programs_sentence_not_its_table():
    program = 'vowels = "aeiou"\ntext = "Hello, have you tried it?"\nprint(sum(text.count(v) for v in vowels))\n'
    got = fill_inputs('write a program to count the vowels in the sentence "hello there world"', program)
    assert got == program.replace('"Hello, have you tried it?"', "'hello there world'")
    # a one-word value does not say which of two words it replaces
    assert fill_inputs('count the vowels in "banana"', 'vowels = "aeiou"\nword = "apple"\nprint(word)\n') is None


def test_a_ranges_bounds_are_not_inputs_where_the_program_loops_over_them_itself():
    squares = "n = 21\nsum_n = 0\nfor i in range(1, n + 1):\n    sum_n += i ** 2\nprint(sum_n)\n"
    got = fill_inputs("print the sum of the squares of the numbers from 1 to 10", squares)
    assert got == squares.replace("21", "10")  # the start 1 is the program's own range(1, ...)
    table = 'num = 9\nfor i in range(1, 11):\n    print(f"{num} x {i} = {num*i}")\n'
    got = fill_inputs('print the multiplication table of 7 from 1 to 10, in the form "7 x 1 = 7"', table)
    assert got == table.replace("num = 9", "num = 7")  # both bounds are the loop's own
    # where the counts agree the range's numbers are inputs like any other
    pair = "a = 1\nb = 5\nprint(list(range(a, b + 1)))\n"
    assert fill_inputs("print the numbers from 3 to 9", pair) == pair.replace("a = 1", "a = 3").replace(
        "b = 5", "b = 9"
    )
