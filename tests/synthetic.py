"""A small synthetic corpus in JSONL for tests that train a tiny model end to end.

Templated prompts with varied values spread over all three splits (the split hashes the prompt),
and each code compiles and runs.
"""

from __future__ import annotations

import json
from pathlib import Path

TEMPLATES = [
    ("write a python function to add {a} and {b}", "def add():\n    return {a} + {b}\n"),
    ("write a python program to print the product of {a} and {b}", "print({a} * {b})\n"),
    ("write a python program to print the numbers from 1 to {a}", "for i in range(1, {a} + 1):\n    print(i)\n"),
    ("write a python function to check whether {a} is even", "def is_even():\n    return {a} % 2 == 0\n"),
    ("write a python program to print the square of {a}", "x = {a}\nprint(x ** 2)\n"),
    ("write a python program to print a list of {a} zeros", "print([0] * {a})\n"),
]


def examples(per_template: int = 40) -> list[dict]:
    rows = []
    for t, (prompt, code) in enumerate(TEMPLATES):
        for i in range(per_template):
            a, b = 3 + i * 7 % 97 + t, 11 + i * 5 % 89
            rows.append({"prompt": prompt.format(a=a, b=b), "code": code.format(a=a, b=b)})
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    """prompt/code rows as a JSONL corpus."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_corpus(path: Path, per_template: int = 40) -> Path:
    return write_rows(path, examples(per_template))
