from e2p.corpus import Example, compiles
from e2p.edit import adapt_literals

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
    from e2p.edit import fill_inputs

    prime = "num = 407\nif num > 1:\n    print(num % 2 == 1)\n"
    assert fill_inputs("write a program to check whether 29 is prime", prime).startswith("num = 29\n")
    pair = "a = 3\nb = 4.5\nprint(a + b)\n"
    assert fill_inputs("print the sum of 15 and 27", pair) == "a = 15\nb = 27\nprint(a + b)\n"
    text = "s = 'abc'\nprint(s[::-1])\n"
    assert fill_inputs('reverse the string "hello world"', text) == "s = 'hello world'\nprint(s[::-1])\n"


def test_inputs_stay_where_the_counts_differ_or_nothing_changes():
    from e2p.edit import fill_inputs

    assert fill_inputs("print the sum of 15 and 27", "a = 3\nprint(a)\n") is None
    assert fill_inputs("print the square", "num = 8\nprint(num ** 2)\n") is None
    assert fill_inputs("print the square of 8", "num = 8\nprint(num ** 2)\n") is None
    assert fill_inputs("print 5", "flag = True\nprint(flag)\n") is None  # booleans are not numbers
    assert fill_inputs("print 5", "def f(:\n") is None
    # only top-level names count: a constant inside a function is not an input
    assert fill_inputs("print 5", "def f():\n    n = 3\n    return n\n") is None
