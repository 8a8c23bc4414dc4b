"""The content view: its JSON (videos, comments, DM threads, labels) and the page in Chromium."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import pytest
import trio
from api.test_dashboard import _chromium, _evaluate, chromium
from conftest import free_port, served

from sim.app import create_app
from sim.settings import Settings

USER = "content-user"
PLAN = {"videos": 4, "comments": 60, "dms": 30, "live_per_minute": 0, "seed": 3, "niche": "cooking"}


async def _enabled(http: httpx.AsyncClient) -> None:
    """Turn USER's demo on and wait until every initial item is stored."""
    assert (await http.put(f"/v1/users/{USER}/demo", json=PLAN)).status_code == 202
    while True:
        doc = (await http.get(f"/v1/users/{USER}/demo")).json()
        if doc["total"] >= 94:
            return
        await trio.sleep(0.1)


async def test_content_document_nests_comments_and_threads(settings: Settings) -> None:
    """The JSON has the niche, videos with comments (replies nested) and ordered DM threads."""
    port = free_port()
    app = create_app(settings.replace(public_url=f"http://127.0.0.1:{port}"), configure_logs=False)
    with trio.fail_after(120):
        async with served(app, port) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.get("/dashboard/api/users/nobody/content")).status_code == 404
            assert (
                await http.put("/v1/users/x/demo", json={"niche": "knitting"})
            ).status_code == 400
            await _enabled(http)
            doc = (await http.get(f"/dashboard/api/users/{USER}/content")).json()
    assert doc["niche"] == "cooking" and len(doc["videos"]) == 4
    comments = [c for v in doc["videos"] for c in v["comments"]]
    replies = [r for c in comments for r in c["replies"]]
    assert len(comments) + len(replies) >= 50 and replies
    assert all(c["niche"] == "cooking" and c["intent"] and c["sentiment"] for c in comments)
    for thread in doc["threads"]:
        indexes = [m["thread_index"] for m in thread["messages"]]
        assert indexes == list(range(len(indexes)))
    assert sum(len(t["messages"]) for t in doc["threads"]) == 30


async def test_content_view_in_chromium(settings: Settings, tmp_path: Path) -> None:
    """In Chromium the page shows videos, nested comments, DM threads and label badges."""
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    port = free_port()
    app = create_app(settings.replace(public_url=f"http://127.0.0.1:{port}"), configure_logs=False)
    profile = tmp_path / "profile"
    profile.mkdir()
    with trio.fail_after(120):
        async with (
            served(app, port) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            chromium(binary, profile) as tools,
        ):
            await _enabled(http)
            target = await tools.call("Target.createTarget", url="about:blank")
            attached = await tools.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            session = attached["sessionId"]
            await tools.call("Runtime.enable", session)
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                session, width=1280, height=900, deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            await tools.call("Page.navigate", session, url=f"{url}/dashboard/content?user={USER}")
            while not await _evaluate(
                tools, session, "!!(window.simContent && window.simContent.loaded)"
            ):
                assert not await _evaluate(
                    tools, session, "window.simContent && window.simContent.error"
                )
                await trio.sleep(0.1)
            counts = await _evaluate(
                tools,
                session,
                "({videos: document.querySelectorAll('.video').length,"
                " comments: document.querySelectorAll('.video .comment').length,"
                " nested: document.querySelectorAll('.replies .comment').length,"
                " threads: document.querySelectorAll('.thread').length,"
                " outbound: document.querySelectorAll('.msg.outbound').length,"
                " intents: document.querySelectorAll('.comment [data-label=intent]').length,"
                " sentiments: document.querySelectorAll('[data-label=sentiment]').length,"
                " niche: document.getElementById('niche').textContent})",
            )
            shot = await tools.call("Page.captureScreenshot", session, format="png")
    assert counts["videos"] == 4 and counts["comments"] >= 50 and counts["nested"] > 0
    assert counts["threads"] > 5 and counts["outbound"] > 0 and counts["niche"] == "cooking"
    assert counts["intents"] == counts["comments"] and counts["sentiments"] > counts["comments"]
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (Path(os.environ.get("CONTENT_SCREENSHOT_DIR", tmp_path)) / "content.png").write_bytes(png)
