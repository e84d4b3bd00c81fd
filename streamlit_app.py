"""e2p web app: type a description, get Python; look inside the model; browse test samples.

    streamlit run streamlit_app.py            # artifacts from ./artifacts or $E2P_ARTIFACTS

Layout and widgets only: every value shown is computed by the `e2p` package
(`e2p.answer.generator`, and `e2p.views`: one module per view, plus the HTML and figures they draw).
A prompt is never run as code; to choose an answer, candidate programs may be run in the
bubblewrap sandbox of `e2p.sandbox.runner` (never outside it). Any exception becomes one plain
sentence on the page and a log line with its traceback on the server.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from e2p.answer.answer_policy import RUN_TIMEOUT_S
from e2p.answer.generator import Generator, set_threads
from e2p.collector import loading
from e2p.constants import RERANKS
from e2p.sandbox.runner import describe_limits, run_code, sandbox_status
from e2p.views import attention, compare, gallery, generate, inputs, model_card, run_panel
from e2p.views import origin_view as ov
from e2p.views.code_html import confidence_html, diff_html
from e2p.views.figures import (
    attention_heatmap,
    axis_labels,
    head_grid,
    metrics_bar,
    plotly_config,
    prompt_attention_html,
    training_curves,
)
from e2p.views.plain_text import plain

APP_DIR = Path(__file__).resolve().parent
VIEWS = ("Generate", "Attention", "Samples", "Compare", "Model")
ORIGIN_LABELS = {"model": "model", "retrieval": "retrieved", "edited": "edited"}
ORIGIN_HELP = {
    "model": "written by the model",
    "retrieval": "a training program, chosen by the ranker",
    "edited": "a training program with this prompt's values put in, chosen by the ranker",
}
PERSIST = "page"  # widget values survive while their tab is not drawn
STATUS_ICONS = {"passed": ":material/check_circle:", "parses": ":material/warning:", "fails": ":material/cancel:"}
STRATEGY_LABELS = {"greedy": "greedy", "beam": "beam search", "sample": "sampling"}
log = logging.getLogger("e2p.app")


@contextmanager
def plain_errors(where: str):
    """Any exception inside becomes one plain sentence on the page and a traceback in the log.
    (Streamlit's own st.rerun / st.stop are BaseExceptions, not Exceptions: they pass.)"""
    try:
        yield
    except Exception as err:
        log.exception("e2p app: failure %s", where)
        st.error(generate.error_sentence(err, where))


# ---------------------------------------------------------------- loading (once per process)


@st.cache_resource(show_spinner="Loading the model…")
def load_generator(folder: str, stamp: float) -> Generator:
    """One Generator shared by every session; `stamp` reloads it after a rebuild. Never mutated."""
    set_threads(int(os.environ.get("E2P_THREADS", "2")))  # few cores, many users
    # Streamlit runs a full gc.collect() after every script run (runner.postScriptGC). A loaded model is
    # some 230,000 long-lived objects, which made that collection 0.12 s of every request; frozen (after
    # one last collection of what loading left behind), the collector skips them.
    with loading(collect=True):
        return Generator(folder)


@st.cache_data(show_spinner=False)
def load_json(path: str, stamp: float):
    return inputs.read_optional_json(path)


# ---------------------------------------------------------------- requests (callbacks)


def request_generation(prompt: str | None = None, goto: str | None = None) -> None:
    """Queue a generation from the form (or an example / a sample); it runs before drawing."""
    if prompt is not None:
        st.session_state["prompt_text"] = prompt
    st.session_state["request"] = {"prompt": st.session_state.get("prompt_text", "")}
    if goto:
        st.session_state["view"] = goto


def run_request(gen: Generator) -> None:
    """Generate for a queued request, keeping the result (or what went wrong) in the session."""
    request = st.session_state.pop("request", None)
    if request is None:
        return
    st.session_state.pop("notice", None)
    prompt = inputs.prepare_prompt(request["prompt"])
    if prompt is None:
        st.session_state["notice"] = (
            "warning",
            "Please type a description of the code you want " "first, or pick one of the examples.",
        )
        return
    state = st.session_state
    try:
        ask = inputs.request_options(gen, bool(state.get("baseline", False)), state)
        with st.spinner("Generating…"):
            # the code first: where its tokens came from and the attention maps come after it is on screen
            result = gen.generate(prompt, attention=False, explain=False, **ask.kwargs())
    except Exception as err:
        log.exception("e2p app: generation failed")
        state["notice"] = ("error", generate.error_sentence(err, "while generating"))
        return
    state["result"] = result
    how = inputs.describe_request(result.settings, ask.rerank, ask.pool, ask.fallback)
    state["result_how"] = (result, how)  # the caption under this result (not under one set elsewhere)
    # Positions in the previous result; and the layer and head picked for it, unless the user chose.
    for key in ("att_token", "att_start") + (() if state.get("att_chosen") else ("att_layer", "att_head")):
        state.pop(key, None)


def choose_layer_head() -> None:
    """The user picked a layer or head: new results keep it instead of opening on their own pick."""
    st.session_state["att_chosen"] = True


# ---------------------------------------------------------------- pages


def artifact_error_page(folder: Path, err: Exception) -> None:
    st.title("e2p — the model could not be loaded")
    st.error(generate.error_sentence(err, "while loading the model"))
    st.markdown(
        f"The app reads its model from the `{plain(folder.name)}` folder (set `{inputs.ENV_FOLDER}` to use "
        "another folder). Rebuild the artifacts from the repository root with:"
    )
    st.code(model_card.rebuild_command(), language="bash")
    st.caption("Then reload this page.")


def header(gen: Generator) -> None:
    title, picker = st.columns([4, 1], vertical_alignment="bottom")
    title.title("e2p — English → Python")
    with picker:
        model_picker(shipped())
    manifest = gen.bundle.manifest
    st.caption(
        f"A {gen.model.num_parameters():,}-parameter Transformer trained on CPU "
        f"({manifest.get('epochs', '?')} epochs). Describe a small program; "
        "get Python, then look inside the model."
    )


def generate_view(gen: Generator, folder: Path) -> None:
    st.write("**Try an example:**")
    cols = st.columns(len(inputs.EXAMPLE_PROMPTS))
    for i, (col, text) in enumerate(zip(cols, inputs.EXAMPLE_PROMPTS)):
        col.button(text, key=f"example_{i}", on_click=request_generation, args=(text,), width="stretch")
    prompt_form(gen)
    status = sandbox_status()
    result = st.session_state.get("result")
    unavailable = generate.execution_notice(status, result.warnings if result is not None else ())
    if unavailable:
        st.info(unavailable)
    with st.expander("What runs, and where", icon=":material/shield:"):
        st.caption(generate.execution_text(status, describe_limits()))
    notice = st.session_state.get("notice")
    if notice:
        (st.warning if notice[0] == "warning" else st.error)(notice[1])
    if result is not None:
        show_result(gen, result, snippet=not gen.policy.runs)


def prompt_form(gen: Generator) -> None:
    d = gen.policy.default.decoding
    cap = min(inputs.MAX_LEN_CAP, gen.model.config.max_len - 2)
    # Outside the form: ticking it reruns the page, so the controls it replaces are disabled at once.
    baseline = st.checkbox(
        "Retrieval baseline: a training program chosen by the learned ranker",
        key="baseline",
        persist_state=PERSIST,
        help="Answer as the retrieval baseline does (e2p generate --rerank ranker): the model's greedy code "
        "and the nearest training programs, ordered by a ranker fitted on the training set; it mostly "
        "answers with a training program picked whole, not written by the model. Uses the artifact's "
        "decoding for it (only the maximum length below applies).",
    )
    if baseline:
        ask = gen.policy.resolve("ranker")
        st.caption(f"The retrieval baseline: {inputs.describe_request(ask.settings, 'ranker', ask.pool)}.")
    with st.form("generate_form", border=True):
        st.text_area(
            "Describe the code you want",
            key="prompt_text",
            persist_state=PERSIST,
            height=110,
            placeholder="e.g. write a python function to add two numbers",
        )
        with st.expander("Decoding settings"):
            c1, c2, c3 = st.columns(3)
            c1.radio(
                "Strategy",
                list(STRATEGY_LABELS),
                format_func=STRATEGY_LABELS.get,
                index=list(STRATEGY_LABELS).index(d.strategy),
                key="strategy",
                persist_state=PERSIST,
                disabled=baseline,
                horizontal=True,
            )
            c1.slider(
                "Beam width",
                1,
                inputs.MAX_BEAM,
                min(d.beam_size, inputs.MAX_BEAM),
                key="beam_size",
                persist_state=PERSIST,
                disabled=baseline,
                help="beam search only",
            )
            c1.slider(
                "Follow the retrieved example",
                0.0,
                inputs.MAX_FOLLOW,
                inputs.follow_weight(d.follow_example),
                0.5,
                key="follow_example",
                persist_state=PERSIST,
                disabled=baseline,
                help="How strongly decoding keeps to the retrieved training example where the code "
                "written so far is on it; 0 is off.",
            )
            c2.slider(
                "Temperature",
                0.1,
                2.0,
                float(d.temperature),
                0.05,
                key="temperature",
                persist_state=PERSIST,
                disabled=baseline,
                help="sampling only: below 1 sharpens, above 1 flattens",
            )
            c2.slider(
                "Top-p",
                0.1,
                1.0,
                float(d.top_p),
                0.05,
                key="top_p",
                persist_state=PERSIST,
                disabled=baseline,
                help="sampling only: nucleus probability mass kept",
            )
            c3.slider(
                "Maximum length (tokens)", 8, cap, max(8, min(d.max_len, cap)), key="max_len", persist_state=PERSIST
            )
            reranks = list(RERANKS)
            c3.selectbox(
                "Pick among candidates by",
                reranks,
                format_func=inputs.rerank_label,
                index=reranks.index(gen.policy.default.rerank) if gen.policy.default.rerank in reranks else 0,
                key="rerank",
                persist_state=PERSIST,
                disabled=baseline,
            )
        st.form_submit_button("Generate", type="primary", on_click=request_generation)


def explained(gen: Generator, result):
    """`result` with its token origins and attention maps, computed once (after the code is shown);
    the session keeps the explained one."""
    if not result.src_ids or result.attention:
        return result
    new = gen.explain(result)
    state = st.session_state
    if state.get("result") is result:
        state["result"] = new
    how = state.get("result_how")
    if how and how[0] is result:
        state["result_how"] = (new, how[1])
    return new


def show_result(gen: Generator, result, snippet: bool = False) -> None:
    """The answer and everything about it; `snippet`: the artifact's answers are snippets, never run.
    The code and its run are drawn first; the views that need the model's teacher-forced pass after."""
    for warning in result.warnings:
        st.warning(warning)
    st.caption(f"Result for: {plain(result.prompt[:300])}{'…' if len(result.prompt) > 300 else ''}")
    if not result.parses:
        line, msg = result.error
        st.error(f"The code does not parse: line {line}: {plain(msg)}")
    st.markdown(ov.origin_sentence(result.origin, result.tokens_are_code))
    st.code(result.formatted, language="python", line_numbers=True)
    if result.added:
        st.caption(plain(ov.added_sentence(result.added)))
    show_run(result, snippet)
    st.download_button(
        "Download .py", result.formatted, file_name="generated.py", mime="text/x-python", key="download_code"
    )
    result = explained(gen, result)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Latency", f"{result.seconds:.2f} s")
    m2.metric("Tokens", len(result.tgt_tokens) - 1)
    probs = result.token_probs
    m3.metric(
        "Model's confidence",
        f"{sum(probs) / len(probs):.0%}" if probs else "—",
        help="The model's mean probability for its own tokens: how sure it was, not whether the code is right.",
    )
    m4.metric("Source", ORIGIN_LABELS.get(result.origin, result.origin), help=ORIGIN_HELP.get(result.origin))
    how = st.session_state.get("result_how")
    st.caption(how[1] if how and how[0] is result else inputs.describe_settings(result.settings))
    tokens = result.tgt_tokens[:-1]  # without <eos>
    pieces = generate.confidence_pieces(tokens)
    show_origins(result, pieces)
    st.subheader("Per-token confidence")
    if not result.tokens_are_code:
        st.caption(
            "These are the model's own tokens, which did not parse; the code above is the "
            "nearest training example's."
        )
    elif result.origin != "model":
        st.caption(
            "The ranker chose a training program (with this prompt's values put in where it is "
            "edited); below, the model reads it teacher-forced: how likely it finds each token."
        )
    st.caption(
        "Each code token is shaded by its probability (red = unsure); hover a token for " "the runner-up tokens."
    )
    st.html(confidence_html(pieces, result.token_probs[: len(tokens)], result.alternatives))
    if len(result.candidates) > 1:
        # Lazy, like the example below: drawn only while open (five highlighted code blocks were a
        # third of the browser's work for every answer, seen or not).
        listed = st.expander(f"All {len(result.candidates)} candidates", key="candidates_open", on_change="rerun")
        if listed.open:
            with listed:
                all_candidates(result)
    if result.neighbour_prompt:
        st.caption(f"Nearest training prompt (the model edits its code): {plain(result.neighbour_prompt)}")


def all_candidates(result) -> None:
    """The candidate list: a table, then each candidate's code."""
    st.dataframe(
        [
            {
                "rank": i + 1,
                "from": ORIGIN_LABELS.get(c.origin, c.origin),
                "ranker": None if c.ranker_score is None else round(c.ranker_score, 2),
                "model score": round(c.score, 3),
                "parses": c.parses,
                "runs": c.runs,
                "code": c.code,
            }
            for i, c in enumerate(result.candidates)
        ],
        hide_index=True,
        row_height=120,
        column_config={"code": st.column_config.TextColumn("code", width="large")},
    )
    for i, c in enumerate(result.candidates):
        st.caption(f"Candidate {i + 1} ({ORIGIN_LABELS.get(c.origin, c.origin)})")
        st.code(c.code, language="python")


RUN_LIMIT = run_panel.RunLimit(runs=5, window=60.0)
STATUS_BOX = {"printed": st.success, "nothing": st.warning, "raised": st.error, "stopped": st.error, "not run": st.info}


def show_status(code: str, run, budget_spent: bool = False, snippet: bool = False) -> None:
    status = sandbox_status()
    verdict = run_panel.run_status(code, run, "" if status.available else status.reason, budget_spent, snippet)
    STATUS_BOX[verdict.kind](plain(verdict.text[:1].upper() + verdict.text[1:]))
    if run is not None:
        for label, text in run_panel.run_details(run):
            if label == "output":
                st.caption("Output")
                st.code(text, language="text")
            else:
                st.caption(f"{label.capitalize()}: {plain(text)}")


def show_run(result, snippet: bool = False) -> None:
    """Under the answer: its sandbox run, a Run button for the code as edited, and the example it followed;
    for a snippet (`snippet`), "snippet: not run" instead of the answer's and the example's runs."""
    st.subheader("What the code does")
    budget_spent = result.run is None and any(c.runs is not None for c in result.candidates)
    show_status(result.code, result.run, budget_spent, snippet)
    with st.form("run_form", border=True):
        edited = st.text_area(
            "Edit the code and run it again in the sandbox",
            value=result.code,
            height=max(100, min(400, 40 + 22 * result.code.count("\n"))),  # Streamlit wants at least 68 px
            key=f"edit_{generate.result_key(result)}",
        )
        pressed = st.form_submit_button("Run", icon=":material/play_arrow:")
    if pressed:
        run_edited(edited)
    shown = st.session_state.get("edited_run")
    if shown and shown[0] is not None and generate.result_key(shown[0]) == generate.result_key(result):
        st.caption("Your edited code, run in the sandbox:")
        show_status(shown[1], shown[2])
    if result.neighbour_code is not None:
        # Lazy: its diff and its own sandbox run are made only when someone opens it.
        example = st.expander(
            "The training example it followed, and what the model changed", key="example_open", on_change="rerun"
        )
        if example.open:
            with example:
                followed_example(result, snippet)


def followed_example(result, snippet: bool) -> None:
    """The training example the answer followed: as written, as shown to the model, the diff, its run."""
    st.caption(f"Training prompt: {plain(result.neighbour_prompt or '')}")
    if result.neighbour_rewritten is not None:
        st.caption(
            "Rules (not the model) rewrote this example before the model was shown it: "
            + "; ".join(result.rewrites)
            + ". The example as written:"
        )
        st.code(result.neighbour_code, language="python")
        st.caption("The example as the model was shown it, and what the model changed:")
    diff = run_panel.example_diff(result.neighbour_rewritten or result.neighbour_code, result.code)
    st.code(diff or "(the same code)", language="diff")
    key = f"example_run_{generate.result_key(result)}"
    if key not in st.session_state and sandbox_status().available and not snippet:
        st.session_state[key] = run_code(result.neighbour_code, RUN_TIMEOUT_S)
    st.caption("The example's own run:")
    show_status(result.neighbour_code, st.session_state.get(key), snippet=snippet)


def run_edited(code: str) -> None:
    """Run the user's edited code in the sandbox (never on the server), within the Run limit."""
    state = st.session_state
    now = time.monotonic()
    times = state.get("run_times", [])
    wait = RUN_LIMIT.wait(times, now)
    if wait > 0:
        st.warning(RUN_LIMIT.refusal(wait))
        return
    status = sandbox_status()
    if not status.available:
        st.info(plain(f"Not run: the sandbox is off ({status.reason})."))
        return
    state["run_times"] = RUN_LIMIT.record(times, now)
    try:
        run = run_code(code, RUN_TIMEOUT_S)
    except Exception as err:
        log.exception("e2p app: a Run failed")
        st.error(generate.error_sentence(err, "while running the code"))
        return
    state["edited_run"] = (state.get("result"), code, run)


def show_origins(result, pieces: list[str]) -> None:
    st.subheader("Where each token came from")
    notice = ov.origin_notice(result.origin, result.tokens_are_code, result.origins, len(pieces))
    if notice:
        st.caption(notice)
        return
    st.caption(
        "Each code token is marked by the route that gave it most of its probability. Hover a "
        "token for the copy gate (the vocabulary's share of the output at that step) and the "
        "probability each route gave it."
    )
    st.html(
        ov.legend_html()
        + ov.origins_html(pieces, result.origins)
        + (ov.added_html(result.added) if result.added else "")
    )
    st.caption(f"Of {len(pieces)} tokens: {ov.origin_summary(result.origins)}")


def attention_view(gen: Generator, folder: Path) -> None:
    result = st.session_state.get("result")
    if result is not None:
        result = explained(gen, result)
    if result is None or not result.attention:
        st.info(
            "Generate some code first (Generate view, or open a sample's attention from the "
            "Samples view); its attention maps appear here."
        )
        return
    st.caption(
        f"Prompt: {plain(result.prompt[:200])} — rows are query positions, columns the "
        "positions they attend to. ↵ newline, ⇥ indent, ⇤ dedent. Zoom by dragging; "
        "save a PNG with the camera icon."
    )
    with st.expander("The code these maps explain", expanded=False):
        st.code(result.formatted, language="python", line_numbers=True)
    attention_explorer(result)


@st.fragment
def attention_explorer(result) -> None:
    """Picker and figures; changing a widget here reruns only this fragment (no regeneration)."""
    with plain_errors("in the Attention view"):
        attention_widgets(result)


def attention_widgets(result) -> None:
    kinds = list(attention.ATTENTION_KINDS)
    kind = st.radio(
        "Attention",
        kinds,
        format_func=attention.ATTENTION_KINDS.get,
        horizontal=True,
        key="att_kind",
        persist_state=PERSIST,
    )
    maps, rows, cols = attention.attention_parts(result, kind)
    n_layers, n_heads = maps.shape[:2]
    # Another kind may have fewer layers: keep the chosen layer where it exists, else its last.
    state = st.session_state
    if state.get("att_layer") not in (None, attention.ALL) and state["att_layer"] >= n_layers:
        state["att_layer"] = n_layers - 1
    prompt = attention.source_parts(result.src_tokens)["prompt"]
    # Opens on the cross-attention head most peaked over the prompt (used only while the key is unset).
    pick = ov.peaked_head(attention.attention_parts(result, "cross")[0], prompt)
    c1, c2, c3 = st.columns([1, 1, 2])
    layer = c1.selectbox(
        "Layer",
        [attention.ALL, *range(n_layers)],
        index=min(pick.layer + 1, n_layers),
        key="att_layer",
        persist_state=PERSIST,
        on_change=choose_layer_head,
        format_func=lambda x: "all layers (mean)" if x == attention.ALL else f"layer {x}",
    )
    head = c2.selectbox(
        "Head",
        [attention.MEAN, *range(n_heads)],
        index=min(pick.head + 1, n_heads),
        key="att_head",
        persist_state=PERSIST,
        on_change=choose_layer_head,
        disabled=layer == attention.ALL,
        format_func=lambda x: "mean of heads" if x == attention.MEAN else f"head {x}",
    )
    layer, head = attention.layer_head(layer, head)
    shown = "all layers (mean)" if layer is None else f"layer {layer}"
    shown += "" if layer is None else (", mean of heads" if head is None else f", head {head}")
    st.caption(f"Showing {attention.ATTENTION_KINDS[kind]}: {shown}.")
    st.caption(ov.pick_caption(pick, layer, head))
    show_example = False
    if kind != "decoder" and len(attention.source_parts(result.src_tokens)) > 1:
        show_example = c3.toggle("Also show the retrieved example's tokens", key="att_example", persist_state=PERSIST)
    if kind != "decoder" and not show_example:
        a, b = prompt
        maps, cols = maps[..., a:b], cols[a:b]
        if kind == "encoder":
            maps, rows = maps[:, :, a:b, :], rows[a:b]
    window = None
    if attention.needs_window(len(rows)):
        start = st.slider(
            f"First row shown ({attention.WINDOW} rows at a time)",
            0,
            len(rows) - attention.WINDOW,
            0,
            key="att_start",
            persist_state=PERSIST,
        )
        window = attention.window_bounds(start, len(rows))
    matrix = attention.select_matrix(maps, layer, head)
    fig = attention_heatmap(matrix, rows, cols, attention.map_title(kind, layer, head), window=window)
    st.plotly_chart(fig, key="att_main", config=plotly_config(attention.png_name(kind, layer, head)))

    grid_layer = 0 if layer is None else layer
    if st.toggle(f"Show all {n_heads} heads of layer {grid_layer} at once", key="att_grid", persist_state=PERSIST):
        grid = head_grid(maps[grid_layer], rows, cols, f"{attention.KIND_NAMES[kind]} — layer {grid_layer}, every head")
        if window is not None:
            grid.update_yaxes(range=[window[1] - 0.5, window[0] - 0.5], autorange=False)
        st.plotly_chart(grid, key="att_grid_chart", config=plotly_config(f"e2p-{kind}-L{grid_layer}-heads"))

    st.subheader("Where did this token come from?")
    labels = axis_labels(result.tgt_tokens)
    index = st.selectbox(
        "Generated code token",
        range(len(labels)),
        format_func=labels.__getitem__,
        key="att_token",
        persist_state=PERSIST,
    )
    weights = attention.token_attention(result, index, layer, head)
    st.caption(
        f"Cross-attention of {plain(labels[index])} over the source "
        f"({attention.where_label(layer, head)}); darker = more attention."
    )
    st.html(prompt_attention_html(result.src_tokens, weights))
    shares = attention.attention_shares(result.src_tokens, weights)
    st.caption(
        " · ".join(f"{name}: {share:.0%}" for name, share in shares.items())
        + "  —  top: "
        + ", ".join(f"{plain(tok)} ({w:.2f})" for tok, w in attention.top_tokens(result.src_tokens, weights))
    )
    st.download_button(
        "Download attention maps (JSON)",
        lambda: attention.attention_json(result),
        file_name="e2p-attention.json",
        mime="application/json",
        key="download_att",
    )


def samples_view(gen: Generator, folder: Path) -> None:
    data = load_json(str(folder / "samples.json"), inputs.folder_stamp(folder))
    samples = (data or {}).get("samples") if isinstance(data, dict) else None
    if not samples:
        st.info(
            f"No test samples in {folder / 'samples.json'} (artifacts built with --no-eval?). "
            f"Rebuild with: `{model_card.rebuild_command()}`"
        )
        return
    names = data.get("decoding") or {}
    c1, c2, c3, c4 = st.columns([3, 1, 2, 1])
    decoding = c1.radio(
        "Compare against the reference",
        [k for k in gallery.SYSTEMS if k in names] or list(gallery.SYSTEMS),
        horizontal=True,
        key="gal_decoding",
        persist_state=PERSIST,
        format_func=lambda k: f"{k} ({names[k]})" if k in names else k,
    )
    status = c2.selectbox("Show", gallery.STATUS_FILTERS, key="gal_status", persist_state=PERSIST)
    query = c3.text_input("Search prompts and code", key="gal_query", persist_state=PERSIST)
    min_bleu = c4.slider("Min BLEU", 0, 100, 0, key="gal_bleu", persist_state=PERSIST)
    summary = gallery.gallery_summary(samples, decoding)
    s1, s2, s3, s4 = st.columns(4)
    s1.metric("Test prompts", summary["samples"])
    s2.metric(
        "Mean sentence BLEU",
        f"{summary['mean BLEU']:.1f}",
        help="The mean of each sample's own BLEU: not the corpus BLEU of the Model view, which pools every "
        "sample's n-grams before scoring.",
    )
    s3.metric("Parse", f"{summary['parses']:.0%}")
    s4.metric("Pass (exact or exec match)", f"{summary['passed']:.0%}")
    beside = original_samples(folder)
    kept = gallery.filter_samples(samples, decoding, status, query, min_bleu)
    pages = gallery.page_count(len(kept))
    number = 1
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    if pages > 1:
        number = left.number_input(f"Page (of {pages})", 1, pages, 1, key="gal_page", persist_state=PERSIST)
    right.caption(
        f"{len(kept)} of {len(samples)} samples match. "
        "Icons: passed (exact or exec match) · parses · does not parse."
    )
    for index, sample in gallery.page(kept, number):
        with st.expander(
            plain(gallery.sample_label(sample, decoding)),  # a label is Markdown: corpus text as typed
            expanded=len(kept) == 1,
            icon=STATUS_ICONS[gallery.sample_status(sample, decoding)],
        ):
            other = beside.get((sample.get("prompt", ""), sample.get("line", 0))) if beside else None
            left, right, *third = st.columns(3 if other is not None else 2)
            left.markdown("**Reference**")
            left.code(sample.get("reference", ""), language="python")
            right.markdown(f"**Generated ({decoding})**")
            right.code(gallery.sample_code(sample, decoding), language="python")
            if other is not None:
                third[0].markdown(f"**{compare.NAMES['original']} ({decoding})**")
                third[0].code(gallery.sample_code(other, decoding), language="python")
            st.caption("Diff: − reference, + generated")
            st.html(diff_html(sample.get("reference", ""), gallery.sample_code(sample, decoding)))
            st.caption(gallery.metric_line(gallery.sample_metrics(sample, decoding)))
            st.button(
                "Open its attention",
                key=f"open_{index}",
                on_click=request_generation,
                args=(sample.get("prompt", ""), "Attention"),
                help="Generates this prompt with the current decoding settings and shows " "its attention maps.",
            )


def original_samples(folder: Path) -> dict | None:
    """For the main model, the original design's answers to the same test prompts, where the user
    asks to see them beside (None otherwise)."""
    original = next((m for m in shipped() if m.key == "original"), None)
    if original is None or current_model().key != "main" or original.folder == folder:
        return None
    label = f"Beside the {compare.NAMES['original'].lower()}'s answers"
    if not st.toggle(label, key="gal_beside", persist_state=PERSIST):
        return None
    data = load_json(str(original.folder / "samples.json"), inputs.folder_stamp(original.folder))
    return compare.by_prompt(data.get("samples", [])) if isinstance(data, dict) else None


def compare_view(gen: Generator, folder: Path) -> None:
    models = shipped()
    st.caption(
        "One prompt through every shipped model, each answering as it does by default: its code, what "
        "running it did (a CoNaLa answer is a snippet, not run), where its tokens came from and how long it took."
    )
    with st.form("compare_form", border=True):
        st.text_input(
            "Prompt to compare", key="compare_text", placeholder="e.g. write a python function to reverse a string"
        )
        pressed = st.form_submit_button("Compare", type="primary")
    state = st.session_state
    if pressed:
        prompt = inputs.prepare_prompt(state.get("compare_text", ""))
        if prompt is None:
            st.warning("Please type a description of the code you want first.")
            return
        status = sandbox_status()
        rows = []
        with st.spinner(f"Asking {len(models)} models…"):
            for model in models:
                try:
                    other = load_generator(str(model.folder), inputs.folder_stamp(model.folder))
                    rows.append(compare.compare_row(model, other, prompt, "" if status.available else status.reason))
                except Exception as err:
                    log.exception("e2p app: %s could not answer", model.folder)
                    rows.append(
                        compare.CompareRow(model, None, 0.0, None, "", generate.error_sentence(err, "while generating"))
                    )
        state["compare_rows"] = rows
    rows = state.get("compare_rows")
    if not rows:
        return
    st.caption(f"Result for: {plain(next((r.result.prompt for r in rows if r.result), ''))}")
    for col, row in zip(st.columns(len(rows)), rows):
        with col:
            st.markdown(f"**{row.model.name}**")
            st.caption(row.model.about)
            if row.result is None:
                st.error(row.error)
                continue
            st.code(row.result.formatted, language="python")
            STATUS_BOX[row.status.kind](plain(row.status.text[:1].upper() + row.status.text[1:]))
            where = plain(row.origins) if row.origins else "not the model's own"
            st.caption(f"{row.seconds:.2f} s · tokens: {where}")
            st.button(
                "Open its attention",
                key=f"compare_attention_{row.model.key}",
                on_click=open_compared,
                args=(row.model.key,),
                icon=":material/grid_on:",
            )


def open_compared(key: str) -> None:
    """Show a compared answer in the Attention view, with its model chosen."""
    state = st.session_state
    row = next(r for r in state.get("compare_rows", []) if r.model.key == key)
    if state.get("model") != key:
        model_changed()
        state["model"] = key
    state["result"] = row.result
    state["view"] = "Attention"


def model_view(gen: Generator, folder: Path) -> None:
    bundle = gen.bundle
    st.subheader("Model card")
    card = model_card.model_card(bundle.config, bundle.manifest, gen.model.num_parameters(), gen.policy)
    st.table({"": [k for k, _ in card], "value": [v for _, v in card]})
    log = load_json(str(folder / "train_log.json"), inputs.folder_stamp(folder))
    if log:
        st.plotly_chart(training_curves(log), key="model_curves", config=plotly_config("e2p-training-curves"))
    split = "dev" if bundle.config.get("train", {}).get("split") == "conala" else "test"  # CoNaLa: dev
    metrics = bundle.manifest.get(f"{split}_metrics") or load_json(
        str(folder / "metrics.json"), inputs.folder_stamp(folder)
    )
    st.subheader(f"{split.capitalize()} metrics")
    if metrics:
        st.dataframe(model_card.metrics_rows(metrics), hide_index=True)
        st.caption(
            "Rates in %. `retrieval` is the baseline: the code of the nearest training " "prompt (TF-IDF), no model."
        )
        note = model_card.unmeasured_note(metrics)
        if note:
            st.caption(note)
        st.plotly_chart(
            metrics_bar(model_card.metric_bars(metrics), ["corpus BLEU", "parse %", "exec match %"]),
            key="model_bars",
            config=plotly_config("e2p-test-metrics"),
        )
    else:
        st.info("No test metrics in these artifacts (built with --no-eval?).")
    st.subheader("Rebuild")
    st.markdown("From the repository root (resumes from its checkpoint if interrupted):")
    st.code(model_card.rebuild_command(), language="bash")
    st.caption(f"Artifacts: the `{plain(folder.name)}` folder (set `{inputs.ENV_FOLDER}` to use another).")


# ---------------------------------------------------------------- main


def shipped() -> list:
    return compare.shipped_models(inputs.artifact_folder(APP_DIR))


def current_model():
    """The model the user chose (the main model until then)."""
    models = shipped()
    key = st.session_state.get("model")
    return next((m for m in models if m.key == key), models[0] if models else None)


MODEL_KEYS = ("result", "result_how", "notice", "edited_run", "att_token", "att_start", "att_layer", "att_head")
DECODING_KEYS = ("strategy", "beam_size", "follow_example", "temperature", "top_p", "max_len", "rerank", "baseline")


def model_changed() -> None:
    """Another model: its own answers, and its own defaults in the decoding controls."""
    for key in MODEL_KEYS + DECODING_KEYS:
        st.session_state.pop(key, None)


def model_picker(models) -> None:
    if len(models) < 2:
        return
    st.selectbox(
        "Model",
        [m.key for m in models],
        format_func=lambda key: next(m.name for m in models if m.key == key),
        key="model",
        on_change=model_changed,
        help="Every view shows the chosen model: its answers, attention, samples and card.",
    )


def main() -> None:
    st.set_page_config(page_title="e2p — English to Python", page_icon="🐍", layout="wide")
    chosen = current_model()
    folder = chosen.folder if chosen is not None else inputs.artifact_folder(APP_DIR)
    try:
        gen = load_generator(str(folder), inputs.folder_stamp(folder))
    except Exception as err:
        log.exception("e2p app: loading the model from %s failed", folder)
        artifact_error_page(folder, err)
        return
    with plain_errors("while drawing the page"):
        run_request(gen)
        header(gen)
        # Stateful tabs: "Open its attention" can switch view, and only the open view is drawn
        # (and sent to the browser); widget values persist while their view is hidden.
        tabs = st.tabs(VIEWS, key="view", on_change="rerun")
        views = (generate_view, attention_view, samples_view, compare_view, model_view)
        for name, tab, draw in zip(VIEWS, tabs, views):
            if tab.open:
                with tab, plain_errors(f"in the {name} view"):
                    draw(gen, folder)


if __name__ == "__main__":
    main()
