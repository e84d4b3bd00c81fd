"""The app's origin helpers: who wrote the code, token origin marks, the head the Attention view opens on."""

import html
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from e2p.model.origins import FROM_EXAMPLE, FROM_PROMPT, ORIGINS, WRITTEN, TokenOrigin
from e2p.views import origin_view as ov


class Spans(HTMLParser):
    """(class, title, text) of every marked span, and the text of the whole fragment."""

    def __init__(self, markup: str):
        super().__init__()
        self.spans, self.text, self._open = [], "", None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "e2p-origin" in (attrs.get("class") or "").split():
            self._open = [attrs["class"], attrs.get("title"), ""]
        elif tag == "br":
            self.text += "\n"

    def handle_endtag(self, tag):
        if tag == "span" and self._open:
            self.spans.append(tuple(self._open))
            self._open = None

    def handle_data(self, data):
        self.text += data
        if self._open:
            self._open[2] += data


def origin(name: str, gate: float = 0.5, shares=(0.1, 0.2, 0.3)) -> TokenOrigin:
    return TokenOrigin(name, gate, tuple(shares))


def test_tokens_are_escaped_in_text_and_hover():
    pieces = ["<script>", ' "a&b"', " </div>"]
    markup = ov.origins_html(pieces, [origin(WRITTEN), origin(FROM_PROMPT), origin(FROM_EXAMPLE)])
    assert "<script>" not in markup and markup.count("</div>") == 1  # only the wrapper's own
    assert "&lt;script&gt;" in markup and "&quot;a&amp;b&quot;" in markup
    parsed = Spans(markup)
    assert parsed.text == '<script> "a&b" </div>'  # the code reads as typed once unescaped
    assert [text for _, _, text in parsed.spans] == ["<script>", '"a&b"', "</div>"]


def test_each_token_is_marked_by_its_origin_with_gate_and_shares_on_hover():
    pieces = ["def", " f", "(", "\n", "    x"]
    origins = [
        origin(WRITTEN, 0.82, (0.7, 0.01, 0.02)),
        origin(FROM_PROMPT, 0.1, (0.05, 0.8, 0.0)),
        origin(FROM_EXAMPLE),
        origin(WRITTEN),
        origin(FROM_PROMPT),
    ]
    parsed = Spans(ov.origins_html(pieces, origins))
    assert len(parsed.spans) == len(pieces)
    for (css, title, _), o in zip(parsed.spans, origins):
        assert ov.ORIGIN_STYLES[o.origin].css_class in css.split()
        assert title.startswith(o.origin + " |")
    assert "gate 0.82: 82% vocabulary" in parsed.spans[0][1]
    assert "written 0.700 · copied from the prompt 0.010 · copied from the example 0.020" in parsed.spans[0][1]
    assert "gate 0.10: 10% vocabulary" in parsed.spans[1][1]
    assert [text for *_, text in parsed.spans] == ["def", "f", "(", " ", "x"]  # spacing is not marked
    assert parsed.text == "def f( \n    x"


def test_marks_refuse_tokens_and_origins_that_do_not_line_up():
    with pytest.raises(ValueError, match="2 tokens but 1 origins"):
        ov.origins_html(["a", "b"], [origin(WRITTEN)])
    with pytest.raises(ValueError, match="unknown origin"):
        ov.origins_html(["a"], [origin("guessed")])


def test_three_distinct_styles_and_a_legend_naming_each():
    styles = [ov.ORIGIN_STYLES[name] for name in ORIGINS]
    assert len({style.css_class for style in styles}) == 3
    backgrounds = [re.search(r"background-color: ([^;]+)", style.css).group(1) for style in styles]
    lines = [re.search(r"border-bottom: \d+px (\w+)", style.css).group(1) for style in styles]
    assert len(set(backgrounds)) == 3 and len(set(lines)) == 3  # colour and line style both tell them apart
    assert [style.line for style in styles] == [f"{line} underline" for line in lines]
    legend = Spans(ov.legend_html())
    assert [text for *_, text in legend.spans] == list(ORIGINS)
    assert [css.split()[1] for css, *_ in legend.spans] == [style.css_class for style in styles]
    for style in styles:
        assert style.line in legend.text


def test_summary_gives_each_origins_share_of_the_tokens():
    origins = [origin(WRITTEN), origin(WRITTEN), origin(FROM_EXAMPLE), origin(FROM_PROMPT)]
    assert ov.origin_summary(origins) == "written 50% · copied from the prompt 25% · copied from the example 25%"
    assert ov.origin_summary([]) == "no tokens"


def test_the_origin_sentence_separates_writing_from_retrieval():
    assert ov.origin_sentence("model").startswith("Written by the model, token by token")
    for retrieved in ("retrieval", "edited"):
        sentence = ov.origin_sentence(retrieved)
        assert "chosen by the ranker" in sentence and "not written by the model" in sentence
    assert "values put in" in ov.origin_sentence("edited")
    assert "nearest training example" in ov.origin_sentence("model", tokens_are_code=False)


def test_origin_notice_says_why_tokens_are_not_marked():
    marks = [origin(WRITTEN)] * 3
    assert ov.origin_notice("model", True, marks, 3) is None
    assert "no copy attention" in ov.origin_notice("model", True, None, 3)
    assert "did not write" in ov.origin_notice("retrieval", True, marks, 3)
    assert "did not write" in ov.origin_notice("model", False, marks, 3)
    assert "do not match" in ov.origin_notice("model", True, marks, 4)


def flat_maps(layers=2, heads=3, rows=4, cols=10) -> np.ndarray:
    return np.full((layers, heads, rows, cols), 1.0 / cols)


def test_picks_the_head_peaked_over_the_prompt_not_a_flat_one():
    maps = flat_maps()
    maps[1, 2, :, :] = 0.0
    maps[1, 2, np.arange(4), np.arange(4)] = 0.9  # each row on one prompt token
    maps[1, 2, :, 9] += 0.1
    pick = ov.peaked_head(maps, (0, 5))
    assert (pick.layer, pick.head) == (1, 2) and pick.peak == pytest.approx(0.9)


def test_the_pick_looks_only_at_the_shown_columns():
    maps = flat_maps()
    maps[0, 1] = 0.0
    maps[0, 1, :, 8] = 1.0  # sharp, but on the retrieved example
    maps[1, 0] = 0.0
    maps[1, 0, :, :5] = 0.15  # spread, yet mostly on the prompt
    maps[1, 0, :, 5:] = 0.05
    assert (ov.peaked_head(maps).layer, ov.peaked_head(maps).head) == (0, 1)
    pick = ov.peaked_head(maps, (0, 5))
    assert (pick.layer, pick.head) == (1, 0) and pick.peak == pytest.approx(0.15)


def test_pick_of_empty_or_malformed_maps():
    assert ov.peaked_head(flat_maps(), (3, 3)) == ov.HeadPick(0, 0, 0.0)
    with pytest.raises(ValueError, match="4-D"):
        ov.peaked_head(np.zeros((2, 3, 4)))


def test_pick_caption_says_why_or_which_head_it_would_open_on():
    pick = ov.HeadPick(1, 2, 0.625)
    opened = ov.pick_caption(pick, 1, 2)
    assert opened.startswith("Opened on layer 1, head 2:") and "0.62" in opened and "least flat" in opened
    other = ov.pick_caption(pick, 0, None)
    assert not other.startswith("Opened") and "layer 1, head 2" in other


def test_a_line_added_by_rule_is_marked_as_the_rules_not_the_models():
    line = "print(add(15, 27))"
    marked = ov.added_html(line)
    assert 'class="e2p-origin e2p-added"' in marked and "added by rule, not by the model" in marked
    assert html.escape(line) in marked
    assert "<script>" not in ov.added_html("print('<script>')")  # escaped like every token
    sentence = ov.added_sentence(line)
    assert line in sentence and "not written by the model" in sentence
