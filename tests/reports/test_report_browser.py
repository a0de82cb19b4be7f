"""A real browser opens the report from disk: headless Chromium driven over the DevTools protocol.

Checks: no console errors or uncaught exceptions, no dialog (an injected ``alert`` would open
one), nothing fetched from the network, every image decoded with a non-zero natural size, the
trials table sorts, and a full-page screenshot is written.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and ``websocket-client``. Set
``TUNECAST_SKIP_BROWSER=1`` to skip on a machine without a browser; otherwise a missing browser
fails the test rather than passing it silently.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tunecast.reports import render_report

SHOTS = os.environ.get("TUNECAST_SCREENSHOT_DIR")  # keep a copy of the screenshot here if set
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
]


def _chromium_binary() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    if os.environ.get("TUNECAST_SKIP_BROWSER") == "1":
        pytest.skip("no Chromium and TUNECAST_SKIP_BROWSER=1")
    pytest.fail("no Chromium found: `apt-get install chromium` (or set TUNECAST_SKIP_BROWSER=1)")


class Browser:
    """A headless Chromium and one page, spoken to over the Chrome DevTools Protocol."""

    def __init__(self, binary: str, profile: Path) -> None:
        websocket = pytest.importorskip("websocket", reason="pip install websocket-client")
        self.log = (profile.parent / "chromium.log").open("wb")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=self.log, stderr=self.log
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"Chromium did not start; see {self.log.name}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        self.socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (events on the way are kept)."""
        call = self._call(method, **params)
        while True:
            message = self._receive()
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def _call(self, method: str, **params: Any) -> int:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def _receive(self) -> dict[str, Any]:
        """One message; events are kept, and a dialog is dismissed so the page goes on."""
        message: dict[str, Any] = json.loads(self.socket.recv())
        if "method" in message:
            self.events.append(message)
            if message["method"] == "Page.javascriptDialogOpening":
                self._call("Page.handleJavaScriptDialog", accept=False)
        return message

    def wait_for(self, event: str, timeout: float = 60) -> None:
        """Read messages until ``event`` arrives."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self._receive()

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def open(self, path: Path) -> list[dict[str, Any]]:
        """Load a file and return the events of that load."""
        self.events.clear()
        self.send("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => setTimeout(r, 300))")  # let late errors arrive
        return list(self.events)

    def screenshot(self, file: Path) -> None:
        """Write a full-page PNG screenshot, 1280 CSS pixels wide."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=min(height, 16000),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        file.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = _chromium_binary()
    chromium = Browser(binary, tmp_path_factory.mktemp("chromium") / "profile")
    for domain in ("Page", "Runtime", "Log", "Network"):
        chromium.send(f"{domain}.enable")
    yield chromium
    chromium.close()


def _problems(events: list[dict[str, Any]]) -> list[str]:
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            problems.append(f"log: {params['entry'].get('text')}")
        elif method == "Page.javascriptDialogOpening":
            problems.append(f"dialog: {params.get('message')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:")):
                problems.append(f"network request: {url}")
    return problems


def test_report_opens_cleanly_in_chromium(
    browser: Browser, make_exp: Callable[..., Path], tmp_path: Path
) -> None:
    """Horizon 3, with a top-5 ensemble/ and the combination (combined/) beside best/."""
    report = render_report(make_exp("h3-ensemble", n_trials=8, horizon=3, ensemble=5, combine=True))
    events = browser.open(report)
    assert _problems(events) == []
    images = browser.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == 7
    assert all(done and width > 0 and height > 0 for done, width, height in images), images
    assert browser.evaluate("document.title").startswith("tunecast report: fixture-demo")
    # The ensemble and the combination are on screen: their rows in the metrics table and their
    # parts of the verdict.
    assert browser.evaluate(
        "Array.from(document.querySelectorAll('table.metrics tbody tr')).map(r => r.dataset.forecaster)"
    ) == ["model", "ensemble", "combined", "naive", "seasonal_naive"]
    for key in ("ensemble", "combined"):
        height = f"document.querySelector('tr[data-forecaster={key}]').getBoundingClientRect().height"
        assert browser.evaluate(height) > 0
    shown = browser.evaluate("document.getElementById('verdict').textContent")
    assert "Top-5 ensemble: test MASE" in shown
    assert "The top-5 ensemble combined with AutoETS and AutoARIMA: test MASE" in shown

    # The trials table sorts by a column when its heading is clicked.
    column = browser.evaluate(
        "Array.from(document.querySelectorAll('table.trials thead th'))"
        ".findIndex(th => th.textContent === 'best val_loss')"
    )
    read = (
        f"Array.from(document.querySelectorAll('table.trials tbody tr'))"
        f".map(r => r.cells[{column}].getAttribute('data-sort'))"
    )
    browser.evaluate(f"document.querySelectorAll('table.trials thead th')[{column}].click()")
    values = [float(v) for v in browser.evaluate(read) if v]
    assert values == sorted(values) and len(values) == 8

    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(SHOTS) / "report.png")


def test_injected_markup_does_not_run_in_chromium(browser: Browser, exp_xss: Path) -> None:
    events = browser.open(render_report(exp_xss))
    assert _problems(events) == []  # an alert() would open a dialog, a broken img would log
    assert browser.evaluate("document.querySelectorAll('img[onerror], img[src=\"x\"]').length") == 0
    assert "<script>alert(1)</script>" in browser.evaluate("document.querySelector('h1').textContent")


def test_a_panel_report_with_a_named_series_opens_cleanly(browser: Browser, exp_panel: Path) -> None:
    events = browser.open(render_report(exp_panel, series=["S02"]))
    assert _problems(events) == []
    images = browser.evaluate(
        "Array.from(document.images).map(i => [i.closest('section').id, i.complete, i.naturalWidth])"
    )
    assert all(done and width > 0 for _, done, width in images), images
    ids = [section for section, _, _ in images]
    assert ids[0] == "fig-mase-distribution" and "fig-series-best-attention" in ids
    titles = browser.evaluate(
        "Array.from(document.querySelectorAll('section.figure h2')).map(h => h.textContent)"
    )
    assert any(title.endswith("S02") or title.startswith("Series S02") for title in titles), titles
