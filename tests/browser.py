"""Start `streamlit run app.py` on a free local port and drive it with Playwright + Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("Chromium is not installed: run `make browser-deps` (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], *args: str, timeout: float = 90):
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           *(["--", *args] if args else [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("streamlit exited:\n" + proc.stdout.read().decode(errors="replace"))
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start in time")
        yield url
    finally:
        stop(proc)


def processes(marker: str) -> list:
    """The processes whose command line holds ``marker`` (e.g. Ray's ``ray::EncoderWorker``), to kill in tests."""
    import psutil

    found = []
    for p in psutil.process_iter():
        try:
            if marker in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            pass
    return found


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Ask a server process to stop (SIGTERM); kill it if it has not stopped in ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def idle(page, timeout: float = 60_000) -> None:
    """Wait until the app's script has finished its run (Streamlit marks the run's state on the app's root).

    A widget that asks for a rerun marks it at once (``rerunRequested``), so an action followed by ``idle``
    waits for that rerun, and a click after ``idle`` cannot land in a rerun and be lost.
    """
    page.wait_for_timeout(300)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout)
    page.wait_for_timeout(200)


def run_query(page, text: str, timeout: float = 60_000) -> None:
    """Type ``text`` into the search box and search, in either interface language."""
    box = page.get_by_placeholder(re.compile("የቡና ምርት"))
    box.fill(text)
    page.get_by_role("button", name=re.compile("^(Search|ፈልግ)$")).click()
    page.locator(".as-card").first.wait_for(timeout=timeout)
