"""Load test of the web app: N browser sessions generating at once for a while.

    python benchmarks/load_app.py                      # 8 sessions, 60 s, starts its own server
    python benchmarks/load_app.py --sessions 2 --duration 10
    python benchmarks/load_app.py --url http://127.0.0.1:8501   # against a running app

Each session is its own Playwright browser context (its own Streamlit session) in Debian's
Chromium. It types a prompt, clicks Generate and waits for the page to show the result for that
prompt; the latency is click → result on screen. The sessions first open the app together, and the
clock (`--duration`) starts once every page is open: eight first page loads cost this 2-core machine
about 40 s of CPU, which would otherwise sit inside the measured window (their time is reported as
`open_s`). An error is a page that does not open, a request that times out, or a page showing a
Streamlit exception. Prints a summary, then one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PROMPTS = (
    "write a python function to add {a} and {b}",
    "write a python program to multiply {a} by {b}",
    "print the numbers from {a} to {b}",
    "write a python function to check if {a} is a prime number",
    "write a program to print the first {a} fibonacci numbers",
    "write a python function to reverse a list of {a} numbers",
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=8, help="concurrent browser sessions (default 8)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to keep generating (default 60)")
    p.add_argument("--url", default=None, help="a running app; default: start `streamlit run` here")
    p.add_argument(
        "--artifacts",
        default=None,
        help="artifact folder for the started app " "(default: $E2P_ARTIFACTS or ./artifacts)",
    )
    p.add_argument("--threads", type=int, default=None, help="E2P_THREADS for the started app")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a request may take before " "it counts as an error"
    )
    p.add_argument("--chromium", default=CHROMIUM, help="Chromium executable")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServerError(RuntimeError):
    """The app server exited or never became healthy."""


def wait_healthy(url: str, proc: subprocess.Popen, log, timeout: float) -> None:
    """Until `url` answers its health check; AppServerError where the server exits first (with the end of
    its output, read from `log`) or is not healthy within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            raise AppServerError(f"streamlit exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AppServerError(f"streamlit did not answer {url}/_stcore/health within {timeout:g} s")
        time.sleep(0.3)


@contextmanager
def app_server(artifacts: str | Path | None = None, threads: int | None = None, timeout: float = 90.0):
    """`streamlit run streamlit_app.py` headless on a free port (on `artifacts` with `threads` torch
    threads where given); yields its URL, stops it on exit. The one way the app server is started, here
    and in tests/test_browser.py."""
    port = free_port()
    env = dict(os.environ)
    if artifacts:
        env["E2P_ARTIFACTS"] = str(Path(artifacts).resolve())
    if threads:
        env["E2P_THREADS"] = str(threads)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "streamlit_app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(url, proc, log, timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def open_app(page, url: str, timeout_ms: float):
    """Load the app and wait until its first run is over; returns the prompt box."""
    await page.goto(url, wait_until="domcontentloaded")
    area = page.get_by_label("Describe the code you want")
    await area.wait_for(timeout=timeout_ms)
    await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    return area


async def session(
    browser,
    url: str,
    number: int,
    duration: float,
    timeout_ms: float,
    rng: random.Random,
    latencies: list[float],
    errors: list[str],
    everyone_open: asyncio.Barrier,
    window: dict,
) -> int:
    """One user: load the app, wait until every session has, then generate for `duration` seconds from
    then (`window["span"]`: the timed window's start and end, set by the first session through).
    Returns requests made."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    requests, previous, area = 0, None, None
    try:
        try:
            area = await open_app(page, url, timeout_ms)
        except Exception as err:
            errors.append(f"session {number}: the app did not open: {type(err).__name__}: {str(err).splitlines()[0]}")
        await everyone_open.wait()  # even when this page failed, or the others would wait for ever
        now = time.monotonic()
        stop_at = window.setdefault("span", (now, now + duration))[1]
        while area is not None and time.monotonic() < stop_at:
            prompt = previous
            while prompt == previous:
                prompt = rng.choice(PROMPTS).format(a=rng.randint(2, 30), b=rng.randint(2, 30))
            previous = prompt
            requests += 1
            try:
                await area.fill(prompt)
                started = time.monotonic()
                await page.get_by_role("button", name="Generate", exact=True).click()
                await page.get_by_text(f"Result for: {prompt}", exact=True).wait_for(timeout=timeout_ms)
                latencies.append(time.monotonic() - started)
                if await page.locator('[data-testid="stException"]').count():
                    errors.append(f"session {number}: the app showed an exception")
            except Exception as err:  # a timeout or a broken page: count it and carry on
                errors.append(f"session {number}: {type(err).__name__}: {str(err).splitlines()[0]}")
                area = await open_app(page, url, timeout_ms)
    except Exception as err:
        errors.append(f"session {number}: {type(err).__name__}: {str(err).splitlines()[0]}")
    finally:
        await context.close()
    return requests


async def drive(url: str, args) -> dict:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        opening, window = time.monotonic(), {}
        everyone_open = asyncio.Barrier(args.sessions)
        counts = await asyncio.gather(
            *(
                session(
                    browser,
                    url,
                    i,
                    args.duration,
                    args.timeout * 1000,
                    random.Random(args.seed + i),
                    latencies,
                    errors,
                    everyone_open,
                    window,
                )
                for i in range(args.sessions)
            )
        )
        started = window["span"][0]
        wall = time.monotonic() - started
        await browser.close()
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    return {
        "sessions": args.sessions,
        "duration_s": args.duration,
        "open_s": round(started - opening, 1),
        "wall_s": round(wall, 1),
        "requests": sum(counts),
        "completed": len(latencies),
        "errors": len(errors),
        "error_messages": errors[:10],
        "p50_s": None if p50 is None else round(p50, 3),
        "p95_s": None if p95 is None else round(p95, 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "mean_s": round(statistics.mean(latencies), 3) if latencies else None,
        "throughput_per_min": round(60 * len(latencies) / wall, 1) if wall else None,
        "cpu_count": os.cpu_count(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if not Path(args.chromium).is_file():
        print(f"load_app: {args.chromium} not found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    if args.url:
        report = asyncio.run(drive(args.url, args))
    else:
        try:
            with app_server(args.artifacts, args.threads) as url:
                report = asyncio.run(drive(url, args))
        except AppServerError as err:
            print(f"load_app: {err}", file=sys.stderr)
            return 1
    print(
        f"{report['sessions']} sessions (opened in {report['open_s']:g} s), then "
        f"{report['duration_s']:g} s: {report['completed']} "
        f"generations, {report['errors']} errors, p50 {report['p50_s']} s, p95 {report['p95_s']} s, "
        f"max {report['max_s']} s ({report['throughput_per_min']} per minute, "
        f"{report['cpu_count']} CPUs)"
    )
    for message in report["error_messages"]:
        print("  error:", message)
    print(json.dumps(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
