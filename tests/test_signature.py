"""Parameters reordered to the order the prompt names them (e2p.answer.signature)."""

from e2p.answer.signature import in_prompt_order

CYLINDER = "def volume(height, radius):\n    return 3.14159 * radius ** 2 * height\n\nprint(volume(5, 3))\n"


def test_parameters_and_every_call_follow_the_prompts_order():
    got = in_prompt_order("the volume of a cylinder given its radius and height", CYLINDER)
    # the call's arguments moved with the parameters: the program computes what it did
    assert got == "def volume(radius, height):\n    return 3.14159 * radius ** 2 * height\n\nprint(volume(3, 5))\n"


def test_nothing_changes_where_the_prompt_does_not_name_every_parameter_or_agrees():
    assert in_prompt_order("the volume of a cylinder", CYLINDER) is None
    assert in_prompt_order("the volume given the height and the radius", CYLINDER) is None


def test_calls_it_cannot_reorder_leave_the_code_as_it_is():
    keywords = CYLINDER.replace("print(volume(5, 3))", "print(volume(height=5, radius=3))")
    assert in_prompt_order("given its radius and height", keywords) is None
    defaults = "def f(height, radius=1):\n    return height * radius\n"
    assert in_prompt_order("given its radius and height", defaults) is None


def test_short_names_are_not_read_from_the_prompt():
    roots = "def roots(a, b, c):\n    return b * b - 4 * a * c\n"
    assert in_prompt_order("the roots of ax^2 + bx + c = 0, given a, b and c", roots) is None
