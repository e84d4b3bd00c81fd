"""The app in a real browser: `streamlit run` on localhost, Debian's Chromium driven by Playwright.

Types a prompt, clicks Generate, waits for the code and its tokens marked by origin, opens the
Attention view and checks that a Plotly heatmap is drawn on the picked head; screenshots go to the
test's tmp folder (the last run's also to /tmp/e2p_screens). Skipped where /usr/bin/chromium or
Playwright is missing.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS.parent / "benchmarks"))
from load_app import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402
from test_app import PROMPT, app_copy_artifacts  # noqa: E402

from e2p.views.inputs import read_optional_json  # noqa: E402

SCREENS = Path("/tmp/e2p_screens")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def folder(request) -> Path:
    return app_copy_artifacts(request)


@pytest.fixture(scope="module")
def server(folder):
    with app_server(folder, threads=1) as url:
        yield url


def answers_with_own_code(folder: Path) -> bool:
    """Whether the artifact's default answer is the model's own code (no train program among the
    candidates, no fallback to one), as the shipped model's is."""
    default = (read_optional_json(folder / "policy.json") or {}).get("default", {})
    return not default.get("pool") and default.get("fallback") is False


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the app's script is not running (Streamlit marks it on the app root)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def keep_screens(tmp_path: Path) -> None:
    """Copy the test's screenshots to SCREENS, where the last run's stay for a reader."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for shot in tmp_path.glob("*.png"):
        shutil.copy(shot, SCREENS / shot.name)


def open_app(browser, server: str, height: int):
    """A page on the app at 1400 × `height`, loaded and idle, and the list its script errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Generate").wait_for(timeout=60_000)
    wait_idle(page)
    return page, errors


def test_type_prompt_generate_and_see_attention(folder, server, browser, tmp_path):
    page, errors = open_app(browser, server, 1600)
    page.screenshot(path=str(tmp_path / "0-start.png"), full_page=True)

    area = page.get_by_label("Describe the code you want")
    area.fill(PROMPT)
    started = time.monotonic()
    page.get_by_role("button", name="Generate", exact=True).click()
    result = page.get_by_text(f"Result for: {PROMPT}")
    result.wait_for(timeout=60_000)
    code = page.locator('[data-testid="stCode"]').first
    code.wait_for(timeout=10_000)
    seconds = time.monotonic() - started
    assert code.inner_text().strip(), "no code shown"
    wait_idle(page)  # the code can show while the script still renders what follows it
    page.locator(".e2p-confidence").first.wait_for(timeout=30_000)  # below the run panel: drawn last
    assert page.locator(".e2p-confidence").count() == 1
    page.get_by_role("heading", name="Where each token came from").wait_for(timeout=10_000)
    marks = page.locator(".e2p-origins .e2p-origin")
    if page.get_by_text("Written by the model, token by token", exact=False).count():
        assert marks.count() >= 1, "no token marked by origin"
        assert re.search(r"gate \d\.\d\d: \d+% vocabulary", marks.first.get_attribute("title"))
        assert page.locator(".e2p-origin-legend .e2p-origin").count() == 3
        assert page.get_by_text(re.compile(r"Of \d+ tokens: written \d+% · copied from the prompt")).count() == 1
        page.locator(".e2p-origins").screenshot(path=str(tmp_path / "1b-origins.png"))
    else:  # the answer is a training program (the model's own did not win): said so, nothing marked
        assert not answers_with_own_code(folder), "the default answer should be the model's own code"
        assert page.get_by_text("Retrieved, not written", exact=False).count() == 1
        assert page.get_by_text("did not write this code", exact=False).count() == 1
        assert marks.count() == 0
    page.screenshot(path=str(tmp_path / "1-generated.png"), full_page=True)

    page.get_by_role("tab", name="Attention").click()
    wait_idle(page)
    heatmap = page.locator(".js-plotly-plot:visible").first
    heatmap.wait_for(state="visible", timeout=30_000)
    assert page.locator(".js-plotly-plot:visible .heatmaplayer").count() >= 1
    page.locator(
        ".js-plotly-plot:visible .gtitle",  # opens on one head, picked and said why
        has_text=re.compile(r"Cross-attention — layer \d+, head \d+"),
    ).wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"^Opened on layer \d+, head \d+")).wait_for(timeout=10_000)
    assert page.locator(".e2p-prompt-attention").count() == 1
    page.screenshot(path=str(tmp_path / "2-attention.png"), full_page=True)
    for kind in ("Decoder self-attention", "Encoder self-attention"):  # the other two kinds
        page.get_by_text(kind, exact=False).first.click()
        page.locator(".js-plotly-plot:visible .gtitle", has_text=f"{kind} — layer").wait_for(timeout=30_000)
    page.get_by_text("Show all", exact=False).first.click()  # every head of the layer
    page.locator(".js-plotly-plot:visible .gtitle", has_text="every head").wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot:visible").count() == 2
    page.screenshot(path=str(tmp_path / "2b-attention-heads.png"), full_page=True)

    page.get_by_role("tab", name="Samples").click()
    wait_idle(page)
    sample = page.locator('[data-testid="stExpander"]:visible').first
    sample.wait_for(timeout=30_000)
    sample.locator("summary").click()  # open one: reference and generated side by side, diff
    page.locator(".e2p-diff:visible").first.wait_for(timeout=10_000)
    sample.get_by_role("button", name="Open its attention").wait_for(timeout=10_000)
    page.wait_for_timeout(600)  # cosmetic only: let the expander's opening animation finish
    page.screenshot(path=str(tmp_path / "3-samples.png"), full_page=True)

    page.get_by_role("tab", name="Model").click()
    wait_idle(page)
    page.locator(".js-plotly-plot:visible").first.wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "4-model.png"), full_page=True)

    keep_screens(tmp_path)
    assert not errors, errors
    page.close()
    print(f"prompt to code in {seconds:.2f} s (browser, including the click round trip)")


def test_a_prompt_is_shown_as_typed_and_fetches_nothing(server, browser):
    """A prompt holding Markdown (an image pointing at a listener of the test's, emphasis, a colour,
    maths) shows as the characters typed, and the visitor's browser requests nothing from it."""
    import http.server
    import threading

    hits = []

    class Count(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's name is http.server's
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Count)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    image = f"![x](http://127.0.0.1:{listener.server_address[1]}/p.png)"
    prompt = f"print {image} **bold** :red[red] $x^2$"
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    try:
        page.goto(server, wait_until="domcontentloaded")
        page.get_by_role("tab", name="Generate").wait_for(timeout=60_000)
        wait_idle(page)
        page.get_by_label("Describe the code you want").fill(prompt)
        page.get_by_role("button", name="Generate", exact=True).click()
        page.get_by_text(f"Result for: {prompt}", exact=True).wait_for(timeout=60_000)
        wait_idle(page)
        page.wait_for_timeout(500)  # time for any image request to go out
        assert page.locator(f'img[src*="127.0.0.1:{listener.server_address[1]}"]').count() == 0
        caption = page.get_by_text("Result for:", exact=False).first
        assert caption.locator("strong, .katex, span[style*='color']").count() == 0
    finally:
        page.close()
        listener.shutdown()
    assert hits == []


def test_the_run_panel_run_button_and_example_diff(folder, server, browser, tmp_path):
    """Issue 28 in a real browser: the answer and its run start above the fold at 1400×1000; a Run of
    edited code runs it in the sandbox (its working folder is the sandbox's, /home/sandbox) and shows
    its output and a "raised …" status; the example the answer followed shows as a diff."""
    page, errors = open_app(browser, server, 1000)
    page.get_by_label("Describe the code you want").fill(PROMPT)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text(f"Result for: {PROMPT}").wait_for(timeout=60_000)
    wait_idle(page)
    code = page.locator('[data-testid="stCode"]').first
    code.wait_for(state="visible", timeout=10_000)
    page.evaluate("window.scrollTo(0, 0)")
    box = code.bounding_box()
    if box["y"] >= 1000:  # keep what the page looked like, for the failure's reader
        page.screenshot(path=str(tmp_path / "below-the-fold.png"), full_page=True)
        keep_screens(tmp_path)
    assert box["y"] < 1000, f"the answer starts below the fold (y {box['y']:.0f}; the page: {SCREENS})"
    page.get_by_role("heading", name="What the code does").wait_for(timeout=10_000)
    status = re.compile(r"^(Ran and printed|Ran but printed nothing|Raised|Stopped|Not run)")
    assert page.get_by_text(status).count() >= 1, "no run status under the answer"
    assert page.get_by_text("The code parses").count() == 0
    page.screenshot(path=str(tmp_path / "5-run-panel.png"), full_page=False)

    area = page.get_by_label("Edit the code and run it again in the sandbox")
    area.fill("import os\nprint(os.getcwd())\nprint(missing)\n")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Raised NameError on line 3").wait_for(timeout=30_000)
    wait_idle(page)
    assert page.get_by_text("/home/sandbox", exact=True).count() >= 1  # its output: run in the sandbox
    page.screenshot(path=str(tmp_path / "6-run-edited.png"), full_page=True)

    expander = page.get_by_text("The training example it followed", exact=False)
    if expander.count():
        expander.first.click()
        page.get_by_text("--- training example", exact=False).first.wait_for(timeout=10_000)
        page.screenshot(path=str(tmp_path / "7-example-diff.png"), full_page=True)
    keep_screens(tmp_path)
    assert not errors, errors
    page.close()


def test_compare_shows_every_shipped_model_side_by_side(folder, server, browser, tmp_path):
    """Issue 31 in a real browser: the Compare view asks every shipped model (the main model and the
    model folders inside its folder) and shows one answer each, under the model's name."""
    from e2p.views.compare import shipped_models

    models = shipped_models(folder)
    page, errors = open_app(browser, server, 1000)
    page.get_by_role("tab", name="Compare").click()
    box = page.get_by_label("Prompt to compare")
    box.wait_for(timeout=30_000)
    box.fill("write a python function to add two numbers")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text("Result for: write a python function to add two numbers").wait_for(timeout=90_000)
    wait_idle(page)
    # one code block and one way into the attention maps per model, drawn after the caption
    page.locator('[data-testid="stCode"]').nth(len(models) - 1).wait_for(timeout=30_000)
    page.get_by_role("button", name="Open its attention").nth(len(models) - 1).wait_for(timeout=30_000)
    wait_idle(page)
    for model in models:
        assert page.get_by_text(model.name, exact=True).count() >= 1, model.name
    assert page.locator('[data-testid="stCode"]').count() >= len(models)
    assert page.get_by_role("button", name="Open its attention").count() == len(models)
    page.screenshot(path=str(tmp_path / "8-compare.png"), full_page=True)
    keep_screens(tmp_path)
    assert not errors, errors
    page.close()
