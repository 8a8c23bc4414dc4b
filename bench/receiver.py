"""A receiver that only acknowledges: ``python -m bench.receiver [port]``.

It plays the main app for the relay, visible and scale benchmarks: every
``POST /ingest`` is answered ``200`` at once, nothing stored; the item ids and
user ids are picked out of the body (by two regex scans, cheaper than a full JSON
parse, which is the fallback) to count items per user and spot duplicates. It runs
as its own process under hypercorn's trio worker, so its CPU is not taken from sim's
event loop.

- ``GET /stats``: ``{"requests", "received", "unique", "first_at", "last_at"}``
  (``*_at`` are ``time.monotonic()`` values, comparable across processes here);
- ``GET /wait?user=U&n=N&timeout=S``: answers once user U has N unique items
  (or after S seconds) with ``{"count", "reached_at"}``;
- ``POST /reset``: forget everything.

The first line on stdout is the URL it listens on.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

__all__ = ["app", "main"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class _User:
    ids: set[str] = field(default_factory=set)
    reached_at: float = 0.0
    changed: trio.Event = field(default_factory=trio.Event)


@dataclass
class _State:
    requests: int = 0
    received: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    users: dict[str, _User] = field(default_factory=dict)

    def unique(self) -> int:
        return sum(len(u.ids) for u in self.users.values())


_state = _State()


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# every item has exactly one of each key (``video_id`` does not match: no quote before
# ``id``), and a quote inside a JSON string is escaped, so these find one pair per item
_ID = re.compile(rb'"id": "([^"]*)"')
_USER = re.compile(rb'"user_id": "([^"]*)"')


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    """``(user_id, id)`` of every item: two regex scans, or a full parse if they disagree."""
    ids, owners = _ID.findall(raw), _USER.findall(raw)
    if len(ids) == len(owners) and raw.startswith(b'{"interactions": ['):
        return [(u.decode(), i.decode()) for u, i in zip(owners, ids, strict=True)]
    items = json.loads(raw)["interactions"]
    return [(item["user_id"], item["id"]) for item in items]


def _ingest(raw: bytes) -> int:
    pairs = _pairs(raw)
    now = time.monotonic()
    st = _state
    st.requests += 1
    st.received += len(pairs)
    st.first_at = st.first_at or now
    st.last_at = now
    touched = set()
    for user_id, item_id in pairs:
        user = st.users.get(user_id)
        if user is None:
            user = st.users[user_id] = _User()
        user.ids.add(item_id)
        touched.add(user_id)
    for user_id in touched:
        user = st.users[user_id]
        user.reached_at = now
        user.changed.set()
        user.changed = trio.Event()
    return len(pairs)


async def _wait(user_id: str, n: int, timeout_s: float) -> dict[str, Any]:
    with trio.move_on_after(timeout_s):
        while True:
            user = _state.users.setdefault(user_id, _User())
            if len(user.ids) >= n:
                break
            await user.changed.wait()
    user = _state.users[user_id]
    return {"count": len(user.ids), "reached_at": user.reached_at}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    global _state
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if method == "POST" and path == "/ingest":
        n = _ingest(await _body(receive))
        await _answer(send, 200, {"accepted": n})
    elif method == "GET" and path == "/stats":
        st = _state
        await _answer(
            send,
            200,
            {
                "requests": st.requests,
                "received": st.received,
                "unique": st.unique(),
                "first_at": st.first_at,
                "last_at": st.last_at,
            },
        )
    elif method == "GET" and path == "/wait":
        args = parse_qs(scope["query_string"].decode())
        doc = await _wait(args["user"][0], int(args["n"][0]), float(args["timeout"][0]))
        await _answer(send, 200, doc)
    elif method == "POST" and path == "/reset":
        await _body(receive)
        _state = _State()
        await _answer(send, 200, {"reset": True})
    else:
        await _answer(send, 404, {"error": "not found"})


async def _serve(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.keep_alive_timeout = 60
    config.graceful_timeout = 1
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def stop() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(serve, app, config, shutdown_trigger=stop)  # type: ignore[arg-type]
            )
            print(binds[0], flush=True)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    trio.run(_serve, port)


if __name__ == "__main__":
    main()
