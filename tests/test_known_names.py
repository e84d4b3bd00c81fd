"""Renaming an example's own names to ones the model can write (e2p.answer.known_names)."""

from e2p.answer.known_names import with_known_names

KNOWN = {"def", "kilometers", "##_to", "km", "conv", "##_fac", "miles", "simple", "principal", "rate", "time"}
known = KNOWN.__contains__


def test_a_name_with_an_unknown_piece_is_renamed_everywhere_to_known_pieces():
    code = "def Kilometers_to_Miles(km):\n    return km * 0.62\n\nprint(Kilometers_to_Miles(3))\n"
    assert with_known_names(code, known) == "def kilometers_to(km):\n    return km * 0.62\n\nprint(kilometers_to(3))\n"


def test_strings_comments_attributes_and_library_names_are_left_alone():
    code = (
        "import Kilometers_to_Miles as Mk\n"
        "simpleIntereset = Mk.Simple_Rate  # simpleIntereset\n"
        "print('simpleIntereset', simpleIntereset)\n"
    )
    out = with_known_names(code, known)
    assert out == (
        "import Kilometers_to_Miles as Mk\n"
        "simple = Mk.Simple_Rate  # simpleIntereset\n"
        "print('simpleIntereset', simple)\n"
    )


def test_nothing_to_rename_or_a_clash_gives_none():
    assert with_known_names("def simple(rate):\n    return rate\n", known) is None  # all known
    # `simpleIntereset` would become `simple`, which the code already uses
    assert with_known_names("simple = 1\nsimpleIntereset = simple + 1\n", known) is None
    assert with_known_names("Zzz = 1\n", known) is None  # no known piece: nothing to rename it to
    assert with_known_names("def (:\n", known) is None  # does not parse


def test_the_shipped_vocabulary_gets_a_name_it_can_write():
    from e2p.data.vocab import Vocab

    k = Vocab.load("artifacts/tgt_vocab.json").index.__contains__
    assert not k("Kilometers")  # the premise: the shipped vocabulary lacks the piece
    code = "def Kilometers_to_Miles(km):\n    conv_fac = 0.621371\n    miles = km * conv_fac\n    return miles\n"
    renamed = with_known_names(code, k)
    assert renamed is not None and "Kilometers" not in renamed and "conv_fac = 0.621371" in renamed


def test_python_2s_raw_input_is_followed_as_input():
    from e2p.answer.known_names import with_python3_names

    code = 'n = int(raw_input("n: "))\nprint(n, "raw_input")\n'
    assert with_python3_names(code) == 'n = int(input("n: "))\nprint(n, "raw_input")\n'
    assert with_python3_names("def raw_input():\n    return 1\nx = raw_input()\n") is None  # its own
    assert with_python3_names("from compat import raw_input\nx = raw_input()\n") is None  # imported
    assert with_python3_names("x = input()\n") is None


def test_a_strings_piece_outside_the_vocabulary_is_split_into_known_pieces_that_join_back():
    from e2p.answer.known_names import with_known_string_pieces
    from e2p.data.tokenizers import code_tokens, decode_code

    known = {"if", "c", "in", "aeiou", "AEIOU", ":", '«"', '»"', "x", "="}.__contains__
    tokens = with_known_string_pieces(code_tokens('if c in "aeiouAEIOU":'), known)
    assert tokens == ["if", "c", "in", '«"', "aeiou", "AEIOU", '»"', ":"]
    assert decode_code(tokens).strip() == 'if c in "aeiouAEIOU":'
    kept = with_known_string_pieces(code_tokens('x = "aeiouZ"'), known)  # no known piece for Z
    assert kept == ["x", "=", '«"', "aeiouZ", '»"']
    names = code_tokens("x = aeiouAEIOU")  # only a string's text is split
    assert with_known_string_pieces(names, known) == names
