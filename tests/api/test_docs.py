"""``/docs`` works offline: Swagger UI's assets come from sim, and the page renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from conftest import served

from sim.api.docs import ASSETS_PATH, swagger_ui_dir
from sim.app import create_app
from sim.settings import Settings


def test_swagger_ui_files_are_installed() -> None:
    """The package that ships Swagger UI has the two files the page loads."""
    folder = swagger_ui_dir()
    assert (folder / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert (folder / "swagger-ui.css").stat().st_size > 10_000


async def test_docs_page_loads_only_from_sim(settings: Settings) -> None:
    """The page names no other host; its script and style sheet are served by sim itself."""
    app = create_app(settings, configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            page = await http.get("/docs")
            assert page.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sorted(sources) == [
                f"{ASSETS_PATH}/swagger-ui-bundle.js",
                f"{ASSETS_PATH}/swagger-ui.css",
            ]
            assert "//" not in page.text.replace("://", "")  # no protocol-relative URL either
            for source, kind in zip(sorted(sources), ("javascript", "text/css"), strict=True):
                asset = await http.get(source)
                assert asset.status_code == 200
                assert kind in asset.headers["content-type"]
            missing = await http.get(f"{ASSETS_PATH}/no-such-file.js")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
            document = (await http.get("/openapi.json")).json()
            assert not any(path.startswith(ASSETS_PATH) for path in document["paths"])


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


async def test_docs_render_in_chromium_without_internet(settings: Settings, tmp_path: Path) -> None:
    """In headless Chromium that can resolve no host but 127.0.0.1, Swagger UI lists the API."""
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    app = create_app(settings, configure_logs=False)
    profile = tmp_path / "profile"
    profile.mkdir()
    with trio.fail_after(180):
        async with served(app) as url:
            done = await trio.run_process(
                [
                    binary,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-sync",
                    # offline: every host name fails to resolve, except sim's own address
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    f"--user-data-dir={profile}",
                    # run the page's scripts (fetching /openapi.json, rendering) before the dump
                    "--virtual-time-budget=15000",
                    "--dump-dom",
                    f"{url}/docs",
                ],
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    dom = done.stdout.decode(errors="replace")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/v1/users/{user_id}/demo", "/healthz", "/readyz"} <= paths, dom[-2000:]
    assert "Failed to load API definition" not in dom
