"""Input limits (body size, counts, user ids, page size, rows per user): 4xx naming the field."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import trio
from conftest import free_port, served, sql
from quart.typing import TestClientProtocol as Client

from sim.app import create_app
from sim.settings import Settings

MAX_BODY = 1024
MAX_ROWS = 50
PAGE_MAX = 20
JSON = {"content-type": "application/json"}


def limited(settings: Settings, **changes: Any) -> Settings:
    """Small limits; deliveries go to a port nobody listens on (retried, harmless)."""
    limits: dict[str, Any] = {
        "max_body_bytes": MAX_BODY,
        "max_rows_per_user": MAX_ROWS,
        "page_size_max": PAGE_MAX,
        "main_app_url": f"http://127.0.0.1:{free_port()}/ingest",
    }
    return settings.replace(**{**limits, **changes})


@asynccontextmanager
async def api(settings: Settings, **changes: Any) -> AsyncIterator[Client]:
    """A started app (small limits, or ``changes``) and a test client for it."""
    app = create_app(limited(settings, **changes), configure_logs=False)
    with trio.fail_after(60):
        async with app.test_app() as test_app:
            yield test_app.test_client()


async def expect_error(response: Any, status: int, field: str | None, case: object = "") -> None:
    """A JSON error body ``{"error": {code, message, field}}`` with this status and field."""
    body = await response.get_json()
    assert response.status_code == status, (case, response.status_code, body)
    assert response.content_type == "application/json", case
    error = body["error"]
    assert error["code"] and error["message"], (case, body)
    assert error.get("field") == field, (case, body)


async def put_raw(client: Client, body: bytes, user: str = "alice") -> Any:
    return await client.put(f"/v1/users/{user}/demo", data=body, headers=JSON)


def _bad_bodies() -> Iterator[tuple[bytes, str]]:
    """(body, field it must be refused for) pairs."""
    for name, too_big in (("videos", 1001), ("comments", 10_001), ("dms", 10_001)):
        yield json.dumps({name: too_big}).encode(), name
    for name in ("videos", "comments", "dms", "seed"):
        wrong: tuple[object, ...] = (-1, 1.5, 2.0, True, "5", [], {}, 2**64)
        for value in wrong:
            yield json.dumps({name: value}).encode(), name
    for value in (-0.1, 601, "6", False):
        yield json.dumps({"live_per_minute": value}).encode(), "live_per_minute"
    yield b'{"live_per_minute": 1e400}', "body"  # beyond a float: not valid JSON here
    yield b'{"videos": null}', "videos"
    yield b'{"surprise": 1}', "surprise"
    for body in (
        b'{"live_per_minute": NaN}',
        b'{"live_per_minute": Infinity}',
        b'{"dms": -Infinity}',
        b'{"videos": ' + b"9" * 5000 + b"}",
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"[]",
        b'"text"',
        b"42",
        b"null",
        b"\xff\xfe\x00",
        b'{"videos": 1',
        b"{'videos': 1}",
    ):
        yield body, "body"


async def test_bad_demo_bodies_get_400_naming_the_field(settings: Settings, db_url: str) -> None:
    """Out-of-range, wrongly typed, non-finite, huge, deep or non-object bodies: 400 + field."""
    async with api(settings, max_body_bytes=65_536) as client:
        for body, field in _bad_bodies():
            await expect_error(await put_raw(client, body), 400, field, body[:60])
        missing = await client.get("/v1/users/alice/demo")
    assert missing.status_code == 404
    assert sql(db_url, "select count(*) from demo_users") == [(0,)]


async def test_body_size_cap(settings: Settings) -> None:
    """A body over SIM_MAX_BODY_BYTES gets 413 naming the body; just under it is read."""
    async with api(settings) as client:
        over = await put_raw(client, b" " * (MAX_BODY + 1))
        padded = json.dumps({"videos": 1, "comments": 0, "dms": 0, "live_per_minute": 0})
        under = await put_raw(client, padded.ljust(MAX_BODY).encode())
    await expect_error(over, 413, "body")
    assert under.status_code == 202, await under.get_json()


async def test_chunked_body_over_the_cap_is_refused(settings: Settings) -> None:
    """Over a real socket, a chunked body (no Content-Length) over the cap is refused too."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * MAX_BODY

    app = create_app(limited(settings), configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
            response = await client.put("/v1/users/alice/demo", content=chunks(), headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["field"] == "body"


async def test_rows_per_user_cap_is_checked_up_front(settings: Settings, db_url: str) -> None:
    """More than SIM_MAX_ROWS_PER_USER rows in all: 400 naming the largest count, nothing stored."""
    async with api(settings) as client:
        over = await client.put(
            "/v1/users/alice/demo", json={"videos": 10, "comments": 30, "dms": 11}
        )
        dms_heavy = await client.put(
            "/v1/users/alice/demo", json={"videos": 1, "comments": 0, "dms": MAX_ROWS}
        )
        status = await client.get("/v1/users/alice/demo")
        stored = sql(db_url, "select count(*) from demo_users")
        exact = await client.put(
            "/v1/users/bob/demo",
            json={"videos": 10, "comments": 30, "dms": 10, "live_per_minute": 0},
        )
    await expect_error(over, 400, "comments")
    assert str(MAX_ROWS) in (await over.get_json())["error"]["message"]
    await expect_error(dms_heavy, 400, "dms")
    assert status.status_code == 404 and stored == [(0,)]
    assert exact.status_code == 202, await exact.get_json()


async def test_user_id_pattern_on_every_route(settings: Settings) -> None:
    """Every /v1 route answers 400 naming user_id for ids outside [A-Za-z0-9._-]{1,64}."""
    bad_ids = ["a" * 65, "caf%C3%A9", "a%20b", "a%00b", "%F0%9F%98%80", "a+b", "a:b", "a%25"]
    routes = [
        ("PUT", "/v1/users/{}/demo"),
        ("GET", "/v1/users/{}/demo"),
        ("DELETE", "/v1/users/{}/demo"),
        ("GET", "/v1/users/{}/interactions"),
    ]
    async with api(settings) as client:
        for method, template in routes:
            for user in bad_ids:
                call = getattr(client, method.lower())
                response = await call(template.format(user))
                await expect_error(response, 400, "user_id", (method, user))
            longest = await client.get(template.format("a" * 64))
            assert longest.status_code in (200, 404), await longest.get_json()


async def test_encoded_slash_in_a_user_id_is_not_a_route(settings: Settings) -> None:
    """Over real HTTP, ``%2F`` in a user id matches no route: a JSON 404, never a 5xx."""
    app = create_app(limited(settings), configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
            slash = await client.get("/v1/users/a%2Fb/demo")
            dots = await client.get("/v1/users/../demo")
    assert slash.status_code == 404 and slash.json()["error"]["code"] == "not_found"
    assert dots.status_code == 404


async def test_page_size_and_query_limits(settings: Settings) -> None:
    """limit over SIM_PAGE_SIZE_MAX, bad limit/cursor/status/kind or unknown params: 400 + field."""
    cases = [
        (f"limit={PAGE_MAX + 1}", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=1e3", "limit"),
        ("limit=" + "9" * 40, "limit"),
        ("limit=", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=%C2%B2", "cursor"),  # a Unicode digit: str.isdigit() says yes, int() says no
        ("cursor=-1", "cursor"),
        ("cursor=" + "1" * 19, "cursor"),
        ("status=lost", "status"),
        ("kind=%00", "kind"),
        ("surprise=1", "surprise"),
    ]
    async with api(settings) as client:
        for query, field in cases:
            response = await client.get(f"/v1/users/alice/interactions?{query}")
            await expect_error(response, 400, field, query)
        ok = await client.get(f"/v1/users/alice/interactions?limit={PAGE_MAX}&cursor=0")
    assert ok.status_code == 200
    assert await ok.get_json() == {"items": [], "next_cursor": None}


async def test_disable_query_is_validated(settings: Settings) -> None:
    """DELETE refuses a purge that is not a boolean and unknown parameters, naming them."""
    async with api(settings) as client:
        await expect_error(await client.delete("/v1/users/alice/demo?purge=maybe"), 400, "purge")
        await expect_error(await client.delete("/v1/users/alice/demo?force=1"), 400, "force")


async def _read_response(stream: trio.SocketStream, buf: bytes) -> tuple[bytes, bytes, bytes]:
    """(status line, headers, what is left over) of one HTTP/1.1 response with Content-Length."""
    while b"\r\n\r\n" not in buf:
        data = await stream.receive_some(65536)
        assert data, "the server closed the connection without answering"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        (
            int(v)
            for k, _, v in (line.partition(b":") for line in lines[1:])
            if k.strip().lower() == b"content-length"
        ),
        0,
    )
    while len(rest) < length:
        data = await stream.receive_some(65536)
        assert data, "the server closed the connection mid-response"
        rest += data
    return lines[0], head.lower(), rest[length:]


async def test_early_errors_do_not_stall_keep_alive_connections(settings: Settings) -> None:
    """A body arriving after an early 401/405 answer never stalls the connection's next request."""
    app = create_app(limited(settings, api_token="t0ken"), configure_logs=False)
    body = b'{"videos": 1}'
    cases = [
        (b"PUT", b"/v1/users/alice/demo", b"401"),  # no token
        (b"PATCH", b"/sink/interactions", b"405"),
        (b"TRACE", b"/healthz", b"405"),
    ]
    with trio.fail_after(60):
        async with served(app) as url:
            port = int(url.rsplit(":", 1)[1])
            for method, path, expected in cases:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                async with stream:
                    buf = b""
                    for _ in range(3):  # the same keep-alive connection, again and again
                        await stream.send_all(
                            b"%s %s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json"
                            b"\r\nContent-Length: %d\r\n\r\n" % (method, path, len(body))
                        )
                        await trio.sleep(0.02)  # the body comes after the headers
                        await stream.send_all(body)
                        with trio.fail_after(15):
                            status, head, buf = await _read_response(stream, buf)
                        assert expected in status, (method, path, status)
                        if b"connection: close" in head:
                            break


async def test_sink_refuses_text_postgresql_cannot_store(settings: Settings, db_url: str) -> None:
    """The sink answers 400 (not 500) to NUL, lone surrogates, NaN and overflowing numbers."""
    now = datetime.now(UTC).isoformat()

    def batch(extra: str) -> bytes:
        item = json.dumps(
            {"id": str(uuid.uuid4()), "user_id": "alice", "kind": "dm", "created_at": now}
        )
        return ('{"interactions": [' + item[:-1] + ", " + extra + "}]}").encode()

    app = create_app(limited(settings), configure_logs=False)
    with trio.fail_after(60):
        async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
            answers = [
                await client.post("/sink/interactions", content=batch(extra), headers=JSON)
                for extra in (
                    '"text": "a\\u0000b"',
                    '"text": "\\ud800"',
                    '"\\udfff": 1',
                    '"score": NaN',
                    '"score": -Infinity',
                    '"score": 1e400',
                )
            ]
            fine = await client.post(
                "/sink/interactions", content=batch('"text": "\\ud83d\\ude00 ok"'), headers=JSON
            )
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_input"
    assert fine.status_code == 200, fine.text
    assert sql(db_url, "select count(*) from sink_received") == [(1,)]
