"""The corpus reader on a hand-written fixture holding each nasty case, and on the real corpus."""

from __future__ import annotations

import ast
import hashlib

import pytest

from e2p.data.corpus import (
    SPLITS,
    clean_code,
    corpus_from_text,
    prompt_key,
    read_corpus,
    split_of,
)
from e2p.errors import E2PError
from e2p.syntax import compiles

# corpus code trips `is`-with-literal and invalid-escape warnings when compiled
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")

# The fixture's kept examples, in file order: prompt the model sees -> cleaned code.
EXPECTED = {
    "write a python program to add two numbers": ("num1 = 1.5\nnum2 = 6.3\nsum = num1 + num2\nprint(f'Sum: {sum}')"),
    # `# 88 write ...`
    "write a python function to multiply two numbers": "def multiply(a, b):\n    return a * b",
    # `#17 Write ...`
    "Write a program to print the squares of numbers below 5": "for i in range(5):\n    print(i * i)",
    # `# 12. write ...`
    "write a python function to reverse a string": "def reverse_string(s):\n    return s[::-1]",
    # `# 3` on its own line above the heading; `# printing result` after a blank line is code
    "write a program to find the largest element of a list": "nums = [4, 8, 1]\nprint(max(nums))",
    # `# initializing list` / `# printing result` inside the code
    "write a program to double every element of a list": (
        "test_list = [1, 2, 3]\ndoubled = [2 * x for x in test_list]\nprint(doubled)"
    ),
    # comment-only lines (indented, column 0, over-indented), a tab-only line, `# Driver Code`
    "write a python function to count the vowels in a string": (
        "def count_vowels(text):\n"
        "    count = 0\n"
        "    for ch in text:\n"
        '        if ch in "aeiou":\n'
        "            count += 1\n"
        "    return count\n"
        'print(count_vowels("education"))'
    ),
    "write a python function to sum a list using tabs": (
        "def tab_sum(values):\n    total = 0\n    for v in values:\n        total += v\n    return total"
    ),
    "write a python function to find the sign of a number with 2-space indentation": (
        "def sign(n):\n" "    if n > 0:\n" "        return 1\n" "    elif n < 0:\n" "        return -1\n" "    return 0"
    ),
    "write a python function to print the even numbers below a limit with 3-space indentation": (
        "def print_evens(limit):\n" "    for i in range(limit):\n" "        if i % 2 == 0:\n" "            print(i)"
    ),
    "write a python function to classify numbers with mixed indentation": (
        "def classify(nums):\n"
        "    out = []\n"
        "    for n in nums:\n"
        "        if n > 0:\n"
        '            out.append("pos")\n'
        "        else:\n"
        '            out.append("neg")\n'
        "    return out"
    ),
    # the continuation line keeps its offset from the statement it continues (+2 like its line)
    "write a python function that builds a list across lines": (
        "def build():\n    values = [1,\n              2, 3]\n    return values"
    ),
    # Python 2 `print greeting` repaired
    "write a program to print a greeting in python 2": 'greeting = "hello"\nprint(greeting)',
    # every line pushed to column 0 after `def`: repaired
    "write a python function to compute the square of a number": (
        "def square(n):\n    result = n * n\n    return result"
    ),
    # the first of the duplicate pair is kept as written
    "write a python function to add two numbers": "def add(a, b):\n    return a+b",
    # ` # write ...` (heading indented by one space): see test_indented_heading_prompt_has_no_hash
    "write a python function to check if a number is even": "def is_even(n):\n    return n % 2 == 0",
    # `# 5. Write ...:` - numbered, capitalised, trailing punctuation; lands in the test split
    "Write a Python function to compute the sum of digits of a number:": (
        "def digit_sum(n):\n    return sum(int(d) for d in str(n))"
    ),
    # lands in the valid split
    "write a python function to find the last element of a list": "def last(items):\n    return items[-1]",
}


@pytest.fixture(scope="module")
def mini(mini_corpus_path):
    return read_corpus(mini_corpus_path)


def _by_key(corpus):
    return {ex.key: ex for ex in corpus.examples}


# ----------------------------------------------------------------------------- the fixture


def test_heading_and_example_counts(mini):
    assert mini.headings == 22
    assert mini.kept_before_dedup == 19
    assert len(mini.examples) == 18
    assert mini.duplicates == 1


def test_drop_counts_by_reason(mini):
    # `return` outside a function and garbage code; a heading with no code
    assert dict(mini.dropped) == {"syntax_error": 2, "empty_code": 1}
    assert mini.headings == mini.kept_before_dedup + sum(mini.dropped.values())


def test_repair_counts(mini):
    assert dict(mini.repaired) == {"python2_print": 1, "lost_indentation": 1}


def test_exact_codes(mini):
    got = _by_key(mini)
    assert sorted(got) == sorted(prompt_key(p) for p in EXPECTED)
    for prompt, code in EXPECTED.items():
        assert got[prompt_key(prompt)].code == code, prompt


def test_exact_prompts_except_the_indented_heading(mini):
    prompts = [ex.prompt for ex in mini.examples]
    indented = "write a python function to check if a number is even"
    assert [p for p in prompts if prompt_key(p) != indented] == [p for p in EXPECTED if p != indented]


def test_indented_heading_prompt_has_no_hash(mini):
    ex = _by_key(mini)["write a python function to check if a number is even"]
    assert ex.prompt == "write a python function to check if a number is even"


def test_numbered_prompts_lose_their_number(mini):
    prompts = {ex.prompt for ex in mini.examples}
    for prompt in prompts:
        assert not prompt[:1].isdigit(), prompt
    assert "write a python function to multiply two numbers" in prompts  # `# 88 write`
    assert "Write a program to print the squares of numbers below 5" in prompts  # `#17 Write`
    assert "write a python function to reverse a string" in prompts  # `# 12. write`
    assert "write a program to find the largest element of a list" in prompts  # `# 3` above


def test_code_comments_never_become_headings(mini):
    for ex in mini.examples:
        low = ex.prompt.lower()
        assert not low.startswith(("printing", "initializing", "driver", "a comment", "walk over", "an over"))
        assert "#" not in ex.code


def test_example_lines_point_at_headings(mini, mini_corpus_path):
    lines = mini_corpus_path.read_text().split("\n")
    for ex in mini.examples:
        assert lines[ex.line - 1].lstrip().startswith("#")


def test_every_example_compiles(mini):
    for ex in mini.examples:
        compile(ex.code, "<test>", "exec")
        assert compiles(ex.code)
        assert ex.code == ex.code.strip("\n")
        assert "\t" not in ex.code
        for line in ex.code.split("\n"):
            assert line.strip(), "blank line kept"
            assert line == line.rstrip()


def test_indentation_is_four_per_level(mini):
    for ex in mini.examples:
        if ex.key == prompt_key("write a python function that builds a list across lines"):
            continue  # a bracket continuation line keeps its own offset
        for line in ex.code.split("\n"):
            assert (len(line) - len(line.lstrip(" "))) % 4 == 0, line


def test_duplicates_are_case_and_punctuation_insensitive(mini):
    adds = [ex for ex in mini.examples if ex.key == "write a python function to add two numbers"]
    assert len(adds) == 1
    assert adds[0].prompt == "write a python function to add two numbers"


def test_split_of_the_fixture(mini, eval_rule):
    _, eval_split = eval_rule
    for ex in mini.examples:
        assert ex.split == eval_split(ex.prompt), ex.prompt
    assert [ex.prompt for ex in mini.split("test")] == [
        "Write a Python function to compute the sum of digits of a number:"
    ]
    assert [ex.prompt for ex in mini.split("valid")] == ["write a python function to find the last element of a list"]
    assert len(mini.split("train")) == 16


def test_stats_shape(mini):
    stats = mini.stats()
    assert stats["headings"] == 22
    assert stats["examples"] == 19
    assert stats["duplicates"] == 1
    assert stats["dropped"] == {"empty_code": 1, "syntax_error": 2}
    assert stats["splits"] == {"train": 16, "valid": 1, "test": 1}


def test_unknown_split_name_is_an_error(mini):
    with pytest.raises(E2PError, match="unknown split"):
        mini.split("dev")


# ----------------------------------------------------------------------------- clean_code


@pytest.mark.parametrize(
    "raw, code",
    [
        (['print "a", x', "x = 1"], 'print("a", x)\nx = 1'),
        (["x = 1", 'print "sum is", x,'], 'x = 1\nprint("sum is", x, end=" ")'),
        (["for i in range(3):", "  print i", "print"], "for i in range(3):\n    print(i)\nprint()"),
        (["  x = 1", "  if x:", "      y = 2", "  print(y)"], "x = 1\nif x:\n    y = 2\nprint(y)"),
        (["def f():", "\t  return 1"], "def f():\n    return 1"),
        (["# only a comment", "   ", "\t"], ""),
    ],
)
def test_clean_code(raw, code):
    assert clean_code(raw) == code


def test_clean_code_gives_none_when_nothing_compiles():
    assert clean_code(["x = 5", "return x"]) is None
    assert clean_code(["def (:", "  ???"]) is None


def test_lost_indentation_if_return_else_return():
    raw = ["def f(n):", "if n == 0:", "return 0", "else:", "return f(n - 1) + 100", "print(f(3))"]
    code = clean_code(raw)
    assert code is not None
    expected = "def f(n):\n    if n == 0:\n        return 0\n    else:\n        return f(n - 1) + 100\nprint(f(3))"
    assert ast.dump(ast.parse(code)) == ast.dump(ast.parse(expected))


def test_blank_and_hash_lines_inside_a_triple_quoted_string_are_kept():
    corpus = corpus_from_text(
        '# write a program to print a poem\npoem = """roses\n\n# violets\n    are blue"""\nprint(poem)\n'
    )
    assert corpus.examples[0].code == 'poem = """roses\n\n# violets\n    are blue"""\nprint(poem)'


# ----------------------------------------------------------------------------- key and split rule


@pytest.mark.parametrize(
    "text, key",
    [
        ("# 88 write", "write"),  # EVAL.md's own example
        ("88 write", "write"),
        ("# 88 write a python program", "write a python program"),
        ("#17 Write a Program!", "write a program"),
        ("# 12. write a function", "write a function"),
        ("  #  Write   a  PYTHON program,   please!! ", "write a python program please"),
        ("# write a python function to add 2 numbers", "write a python function to add 2 numbers"),
        ("# Write a program: print 'hello-world' (x2)", "write a program print hello world x2"),
        ("# naïve café", "na ve caf"),  # non-ASCII letters are outside [a-z0-9]
        ("# 42", ""),
        ("#", ""),
    ],
)
def test_prompt_key(text, key, eval_rule):
    eval_key, _ = eval_rule
    assert prompt_key(text) == key
    assert eval_key(text) == key


FIXED_PROMPTS = [
    "write a python program to add two numbers",
    "# 88 write a python function to multiply two numbers",
    "#17 Write a program to print the squares of numbers below 5",
    "# 12. write a python function to reverse a string",
    "Write a Python function to compute the sum of digits of a number:",
    "# 5. Write a Python function to compute the sum of digits of a number:",
    "write a python function to find the last element of a list",
    "WRITE a python function -- to find the last element of a list ??",
    "write a program to print the fibonacci series",
    "Write a function that reverses a list, in place!",
    "",
]


@pytest.mark.parametrize("prompt", FIXED_PROMPTS)
def test_split_rule_matches_eval_md(prompt, eval_rule):
    eval_key, eval_split = eval_rule
    key = eval_key(prompt)
    bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 20
    expected = {0: "test", 1: "valid"}.get(bucket, "train")
    assert prompt_key(prompt) == key
    assert split_of(prompt_key(prompt)) == expected == eval_split(prompt)


def test_split_rule_fixed_points():
    # hashes computed by hand from EVAL.md's formula; they must never move
    assert split_of("write a python function to compute the sum of digits of a number") == "test"
    assert split_of("write a python function to find the last element of a list") == "valid"
    assert split_of("write a python program to add two numbers") == "train"
    assert split_of(prompt_key("# 5. Write a Python function to compute the sum of digits of a number:")) == "test"


def test_splits_partition_the_examples(mini):
    names = [ex.split for ex in mini.examples]
    assert set(names) <= set(SPLITS)
    assert sum(len(mini.split(s)) for s in SPLITS) == len(mini.examples)


# ----------------------------------------------------------------------------- read errors


def test_missing_file(tmp_path):
    with pytest.raises(E2PError, match="not found"):
        read_corpus(tmp_path / "nope.txt")


def test_empty_file(tmp_path):
    for content in (b"", b"  \n\n\t\n"):
        path = tmp_path / "empty.txt"
        path.write_bytes(content)
        with pytest.raises(E2PError, match="empty"):
            read_corpus(path)


def test_binary_file(tmp_path):
    path = tmp_path / "binary.bin"
    path.write_bytes(b"# write a program\x00\x01\x02print(1)\n")
    with pytest.raises(E2PError, match="binary"):
        read_corpus(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("# write a program to print café\nprint('café')\n".encode("latin-1"))
    with pytest.raises(E2PError, match="UTF-8"):
        read_corpus(path)


def test_directory(tmp_path):
    with pytest.raises(E2PError, match="not a file"):
        read_corpus(tmp_path)


def test_text_without_headings(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text("x = 1\nprint(x)\n")
    with pytest.raises(E2PError, match="no instruction headings"):
        read_corpus(path)


def test_error_messages_are_one_line(tmp_path):
    (tmp_path / "bin").write_bytes(b"\x00\xff")
    for path in (tmp_path / "nope", tmp_path, tmp_path / "bin"):
        with pytest.raises(E2PError) as err:
            read_corpus(path)
        assert "\n" not in str(err.value)


def test_utf8_bom_keeps_the_first_example(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(
        b"\xef\xbb\xbf# write a program to print one\nprint(1)\n\n# write a program to print two\nprint(2)\n"
    )
    corpus = read_corpus(path)
    assert corpus.headings == 2
    assert [ex.prompt for ex in corpus.examples] == [
        "write a program to print one",
        "write a program to print two",
    ]


def test_crlf_line_endings_read_the_same(tmp_path, mini_corpus_path, mini):
    path = tmp_path / "crlf.txt"
    path.write_bytes(mini_corpus_path.read_bytes().replace(b"\n", b"\r\n"))
    other = read_corpus(path)
    assert [(ex.prompt, ex.code) for ex in other.examples] == [(ex.prompt, ex.code) for ex in mini.examples]


# ----------------------------------------------------------------------------- the real corpus


@pytest.fixture(scope="module")
def full(full_corpus):
    return full_corpus


@pytest.mark.slow
def test_full_corpus_counts(full):
    stats = full.stats()
    assert stats["examples"] >= 4200  # kept before de-duplication
    assert stats["examples"] >= 0.96 * stats["headings"]
    assert full.dropped["syntax_error"] <= 0.03 * full.headings
    assert stats["headings"] == stats["examples"] + sum(stats["dropped"].values())
    assert sum(stats["splits"].values()) == len(full.examples)
    assert min(stats["splits"].values()) > 0


@pytest.mark.slow
def test_full_corpus_examples_compile(full):
    for ex in full.examples:
        ast.parse(ex.code)
        assert prompt_key(ex.prompt), ex.line


@pytest.mark.slow
def test_full_corpus_no_key_in_two_splits(full, eval_rule):
    _, eval_split = eval_rule
    seen: dict[str, str] = {}
    for ex in full.examples:
        assert ex.split == eval_split(ex.prompt)
        assert seen.setdefault(ex.key, ex.split) == ex.split, ex.prompt
    idents = [(ex.key, ast.dump(ast.parse(ex.code))) for ex in full.examples]
    assert len(idents) == len(set(idents))


@pytest.mark.slow
def test_full_corpus_prompts_have_no_hash(full):
    assert [ex.line for ex in full.examples if ex.prompt.startswith("#")] == []
