"""Chromium driven over the DevTools protocol with nothing but ``Runtime``.

playwright enables the ``Network`` domain on every page it drives, and with
it Chromium reports each WebSocket message to the driver, payload included
(base64 in JSON): at 256 KiB messages that costs the renderer, the browser
process and playwright's node driver more CPU than receiving the bytes does
(measured: about 3 of 4.5 CPU seconds per 128 MiB).  A throughput benchmark
of the browser's WebSocket must not be watched that way, so this module
starts Chromium itself and speaks just enough of the protocol to open a
page and evaluate a function in it (and, for profiles, ``Profiler``:
``Page.profile``).

    with Chromium() as browser:
        page = browser.new_page(url, bypass_csp=True)
        result = page.evaluate("async (x) => x + 1", 41)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS


class Chromium:
    """A headless Chromium process and one DevTools connection to it (a context manager)."""

    def __init__(self, args: list[str] | None = None) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="pagebridge-chromium-")
        self.process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_ARGS, *(args or []), "--remote-debugging-port=0",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Chromium writes the port it chose and the browser's path there.
        active = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().split()) >= 2):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = active.read_text().split()[:2]
        url = f"ws://127.0.0.1:{port}{path}"
        self._ws: ClientConnection = connect(url, max_size=None, open_timeout=30)
        self._ids = itertools.count(1)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Call ``method`` and return its result (events arriving meanwhile are dropped)."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def new_page(self, url: str, *, bypass_csp: bool = False) -> Page:
        """A new tab at ``url``, loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        if bypass_csp:
            self.send("Page.setBypassCSP", {"enabled": True}, session)
        self.send("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + 30
        while page.evaluate("() => document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load")
            time.sleep(0.05)
        return page

    def pids(self) -> list[int]:
        """Chromium's processes (the browser and its children)."""
        import psutil

        root = psutil.Process(self.process.pid)
        return [root.pid, *(child.pid for child in root.children(recursive=True))]

    def close(self) -> None:
        import psutil

        with contextlib.suppress(Exception):
            self._ws.close()
        children = []
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.kill()
        self.process.wait()
        for child in children:  # renderers and helpers normally follow their browser; make sure
            with contextlib.suppress(psutil.Error):
                child.kill()
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab, reached through its DevTools session."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def profile(self, function: str, arg: Any = None, *, interval_us: int = 200) -> tuple[Any, dict[str, float]]:
        """Evaluate like :meth:`evaluate` under the sampling profiler.

        Returns the value and the renderer main thread's self time in
        seconds by function (``name file:line``; ``(program)`` is Chromium's
        own native work, ``(idle)`` waiting).
        """
        self.send("Profiler.enable")
        self.send("Profiler.setSamplingInterval", {"interval": interval_us})
        self.send("Profiler.start")
        try:
            value = self.evaluate(function, arg)
        finally:
            profile = self.send("Profiler.stop")["profile"]
            self.send("Profiler.disable")
        frames = {node["id"]: node["callFrame"] for node in profile["nodes"]}
        self_time: dict[str, float] = {}
        deltas = profile["timeDeltas"]
        # timeDeltas[i] is the time before sample i: sample i lasted until sample i + 1.
        for i, node in enumerate(profile["samples"][:-1]):
            frame = frames[node]
            key = f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1}"
            self_time[key] = self_time.get(key, 0.0) + deltas[i + 1] / 1e6
        return value, self_time

    def evaluate(self, function: str, arg: Any = None) -> Any:
        """Call the JavaScript ``function`` with ``arg`` (JSON), await it, return its value (JSON)."""
        result = self.send("Runtime.evaluate", {
            "expression": f"({function})({json.dumps(arg)})", "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")
