"""The dashboard: its JSON and SSE endpoints, and the page itself in headless Chromium.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
NUL-separated JSON on file descriptors 3 and 4), so no extra package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from conftest import free_port, served

from sim.api.dashboard import EXTENSION, RateTracker
from sim.app import create_app
from sim.settings import Settings

USER = "dash-user"
PLAN = {"videos": 5, "comments": 100, "dms": 100, "live_per_minute": 0, "seed": 7}
TOTAL = 205


def _slow_settings(settings: Settings, port: int) -> Settings:
    """Deliveries slow enough (small batches, a sink that takes 0.3 s) to watch counts rise."""
    return settings.replace(
        public_url=f"http://127.0.0.1:{port}",
        send_batch_size=10,
        send_concurrency=2,
        sink_latency_s=0.3,
    )


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event name, data) pairs of a Server-Sent Events response."""
    block: list[str] = []
    async for line in response.aiter_lines():
        if line:
            block.append(line)
            continue
        name, data = "message", []
        for entry in block:
            field, _, value = entry.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value.removeprefix(" "))
        block = []
        if data:
            yield name, json.loads("\n".join(data))


def test_rate_tracker_measures_over_its_window() -> None:
    """The rate is sent-per-second over the window; a new run or fewer rows start over."""
    rates = RateTracker(window_s=10)
    assert rates.observe("u", "run1", 0.0, 0) is None
    assert rates.observe("u", "run1", 2.0, 100) == 50.0
    assert rates.observe("u", "run1", 20.0, 100) == pytest.approx(0.0)
    assert rates.observe("u", "run2", 21.0, 5) is None
    assert rates.observe("u", "run2", 22.0, 1) is None
    rates.keep_only(set())
    assert rates.observe("u", "run2", 23.0, 1) is None


async def test_users_listing_and_event_stream(settings: Settings) -> None:
    """/dashboard/api/users lists users; /dashboard/events pushes them until the final counts."""
    port = free_port()
    app = create_app(_slow_settings(settings, port), configure_logs=False)
    with trio.fail_after(90):
        async with served(app, port) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            empty = (await http.get("/dashboard/api/users")).json()
            assert empty["users"] == [] and empty["limit"] > 0
            assert (await http.put(f"/v1/users/{USER}/demo", json=PLAN)).status_code == 202
            seen: list[int] = []
            async with http.stream("GET", "/dashboard/events") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for name, doc in _events(response):
                    assert name == "users"
                    (user,) = doc["users"]
                    seen.append(user["counts"]["sent"])
                    if user["state"] == "live":
                        break
            assert seen == sorted(seen)
            assert user["counts"] == {"pending": 0, "sending": 0, "sent": TOTAL, "failed": 0}
            assert user["initial_done"] == user["initial_total"] == TOTAL
            listing = (await http.get("/dashboard/api/users")).json()
            assert [u["user_id"] for u in listing["users"]] == [USER]
            assert listing["users"][0]["rate_per_s"] is not None
            with trio.fail_after(30):  # the stream's end was seen by the server
                while True:
                    if app.extensions[EXTENSION].streams == 0:
                        break
                    await trio.sleep(0.05)


async def test_users_come_in_pages_with_a_summary_of_all(settings: Settings) -> None:
    """A page holds at most ``limit`` users; the states count every user; bad paging is 400."""
    app = create_app(settings, configure_logs=False)
    one = {"videos": 0, "comments": 0, "dms": 1, "live_per_minute": 0}
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            for user in ("page-a", "page-b", "page-c"):
                assert (await http.put(f"/v1/users/{user}/demo", json=one)).status_code == 202
            first = (await http.get("/dashboard/api/users", params={"limit": 2})).json()
            assert [u["user_id"] for u in first["users"]] == ["page-c", "page-b"]
            assert (first["offset"], first["next_offset"], first["total"]) == (0, 2, 3)
            assert sum(first["states"].values()) == 3
            last = (await http.get("/dashboard/api/users", params={"limit": 2, "offset": 2})).json()
            assert [u["user_id"] for u in last["users"]] == ["page-a"]
            assert last["next_offset"] is None
            for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"page": 1}):
                response = await http.get("/dashboard/api/users", params=bad)
                assert response.status_code == 400
                assert response.json()["error"]["code"]


async def test_dashboard_data_needs_the_token(settings: Settings) -> None:
    """With SIM_API_TOKEN set, the page loads but its data needs the bearer token."""
    app = create_app(settings.replace(api_token="dash-token-1234"), configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert (await http.get("/dashboard/static/dashboard.js")).status_code == 200
            for path in ("/dashboard/api/users", "/dashboard/events"):
                denied = await http.get(path)
                assert denied.status_code == 401
                assert denied.json()["error"]["code"] == "unauthorized"
            auth = {"Authorization": "Bearer dash-token-1234"}
            assert (await http.get("/dashboard/api/users", headers=auth)).status_code == 200


async def test_event_stream_ends_when_the_server_stops(settings: Settings) -> None:
    """Stopping the server with an event stream open ends the stream (no task left behind)."""
    app = create_app(settings, configure_logs=False)
    streaming, ended = trio.Event(), trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            async with served(app) as url:

                async def listen() -> None:
                    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                        try:
                            async with http.stream("GET", "/dashboard/events") as response:
                                async for _ in response.aiter_bytes():
                                    streaming.set()
                        except httpx.HTTPError:
                            pass  # the server closed the connection mid-stream
                    ended.set()

                nursery.start_soon(listen)
                await streaming.wait()
            # the server has stopped (within its grace period); the client saw the end
            with trio.fail_after(30):
                await ended.wait()
    assert app.extensions[EXTENSION].streams == 0


# --- the page in a real browser --------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, send: trio.lowlevel.FdStream, receive: trio.lowlevel.FdStream) -> None:
        self._send = send
        self._receive = receive
        self._next_id = 0
        self._waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.console: list[str] = []

    async def pump(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        buffer = b""
        while True:
            chunk = await self._receive.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message and message["id"] in self._waiting:
                    self._waiting.pop(message["id"]).send_nowait(message)
                elif message.get("method") == "Runtime.exceptionThrown":
                    self.console.append(str(message["params"]["exceptionDetails"]))
                elif message.get("method") == "Runtime.consoleAPICalled":
                    args = message["params"]["args"]
                    self.console.append(" ".join(str(a.get("value")) for a in args))

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self._next_id += 1
        ident = self._next_id
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[ident] = send
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self._send.send_all(json.dumps(message).encode() + b"\0")
        with trio.fail_after(30):
            reply = await receive.receive()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


@asynccontextmanager
async def chromium(binary: str, profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium that can reach only 127.0.0.1, driven over a pipe."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--no-pings",
        "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--hide-scrollbars",
        "--window-size=1280,640",
        f"--user-data-dir={profile}",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    # the browser reads commands on fd 3 and writes answers on fd 4: a tiny exec wrapper
    # moves the pipe ends there (subprocess keeps descriptor numbers as they are)
    remap = (
        "import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); "
        "os.dup2(a, 3); os.dup2(b, 4); os.close(a); os.close(b); "
        "os.execv(sys.argv[3], sys.argv[3:])"
    )
    log = (profile.parent / "chromium.log").open("wb")
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", remap, str(to_browser_r), str(from_browser_w), binary, *flags],
        pass_fds=(to_browser_r, from_browser_w),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    os.close(to_browser_r)
    os.close(from_browser_w)
    tools = DevTools(trio.lowlevel.FdStream(to_browser_w), trio.lowlevel.FdStream(from_browser_r))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(tools.pump)
            try:
                yield tools
            finally:
                with trio.move_on_after(5):
                    await tools.call("Browser.close")
                nursery.cancel_scope.cancel()
    finally:
        with trio.move_on_after(10) as waited:
            await process.wait()
        if waited.cancelled_caught:
            process.kill()
            await process.wait()
        log.close()


async def _evaluate(tools: DevTools, session: str, expression: str) -> Any:
    result = await tools.call(
        "Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True
    )
    if "exceptionDetails" in result:
        raise AssertionError(f"{expression}: {result['exceptionDetails']}")
    return result["result"].get("value")


ROW = """(() => {
  const tr = document.querySelector('tr[data-user="%s"]');
  if (!tr) return null;
  const cell = (f) => tr.querySelector('[data-field="' + f + '"]').textContent;
  return {state: tr.dataset.state, sent: +cell('sent'), failed: +cell('failed'),
          pending: +cell('pending'), sending: +cell('sending'),
          progress: tr.querySelector('.bar .label').textContent,
          button: tr.querySelector('button').textContent};
})()"""


async def test_dashboard_in_chromium_shows_counts_rising_live(
    settings: Settings, tmp_path: Path
) -> None:
    """In Chromium, a user enabled via the API rises to its final counts without a reload."""
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    port = free_port()
    app = create_app(_slow_settings(settings, port), configure_logs=False)
    profile = tmp_path / "profile"
    profile.mkdir()
    with trio.fail_after(120):
        async with (
            served(app, port) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            chromium(binary, profile) as tools,
        ):
            target = await tools.call("Target.createTarget", url="about:blank")
            attached = await tools.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            session = attached["sessionId"]
            await tools.call("Runtime.enable", session)
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=1280,
                height=640,
                deviceScaleFactor=1,
                mobile=False,
            )
            await tools.call("Page.navigate", session, url=url + "/")
            updated = "!!(window.simDashboard && window.simDashboard.updates > 0)"
            while True:
                if await _evaluate(tools, session, updated):
                    break
                await trio.sleep(0.1)
            assert await _evaluate(tools, session, "!document.getElementById('empty').hidden")
            await _evaluate(tools, session, "window.__sameDocument = 'yes'")
            loaded_at = await _evaluate(tools, session, "window.simDashboard.loadedAt")
            updates_before = await _evaluate(tools, session, "window.simDashboard.updates")

            assert (await http.put(f"/v1/users/{USER}/demo", json=PLAN)).status_code == 202
            sent_seen: list[int] = []
            while True:
                row = await _evaluate(tools, session, ROW % USER)
                if row is not None:
                    if not sent_seen or sent_seen[-1] != row["sent"]:
                        sent_seen.append(row["sent"])
                    if row["state"] == "live" and row["sent"] == TOTAL:
                        break
                await trio.sleep(0.1)

            # the counts only rose, and came in by the stream's updates (how many the page
            # saw on the way depends on the machine's speed, so only that there were some)
            assert sent_seen == sorted(sent_seen), sent_seen
            updates = await _evaluate(tools, session, "window.simDashboard.updates")
            assert updates > updates_before, (updates_before, updates)
            assert row == {
                "state": "live",
                "sent": TOTAL,
                "failed": 0,
                "pending": 0,
                "sending": 0,
                "progress": f"{TOTAL} / {TOTAL} (100%)",
                "button": "Disable",
            }
            # the same document all along: no reload happened
            assert await _evaluate(tools, session, "window.__sameDocument") == "yes"
            assert await _evaluate(tools, session, "window.simDashboard.loadedAt") == loaded_at
            navigations = "performance.getEntriesByType('navigation').length"
            assert await _evaluate(tools, session, navigations) == 1
            status = (await http.get(f"/v1/users/{USER}/demo")).json()
            assert status["counts"]["sent"] == TOTAL

            # one more update, so that the rate column is filled in
            seen = await _evaluate(tools, session, "window.simDashboard.updates")
            while True:
                if await _evaluate(tools, session, "window.simDashboard.updates") > seen:
                    break
                await trio.sleep(0.1)
            shot = await tools.call("Page.captureScreenshot", session, format="png")
            png = base64.b64decode(shot["data"])
            assert png.startswith(b"\x89PNG")
            (tmp_path / "dashboard.png").write_bytes(png)

            # the Disable button turns demo mode off through the API
            await _evaluate(
                tools, session, f"document.querySelector('tr[data-user=\"{USER}\"] button').click()"
            )
            while True:
                if (await _evaluate(tools, session, ROW % USER))["state"] == "disabled":
                    break
                await trio.sleep(0.1)
            assert (await http.get(f"/v1/users/{USER}/demo")).json()["enabled"] is False
            assert tools.console == [], tools.console
