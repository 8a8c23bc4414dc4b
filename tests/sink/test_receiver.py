"""The bundled sink over a real socket: signatures, validation, de-dup, stats, faults."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio
from conftest import served, sql
from standardwebhooks.webhooks import Webhook

from sim.settings import Settings
from sim.sink import create_sink_app
from sim.web.lifecycle import halt

SECRET = "whsec_" + base64.b64encode(b"first-secret-of-32-bytes-length!").decode()
SECRET2 = "whsec_" + base64.b64encode(b"second-secret-of-32-bytes-long!!").decode()
ZERO = {"received": 0, "unique": 0, "duplicates": 0}


@asynccontextmanager
async def sink_client(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A standalone sink served on a real socket, and a client for it."""
    app = create_sink_app(settings.replace(**changes), configure_logs=False)
    with trio.fail_after(30):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client


def item(
    kind: str = "dm",
    user: str = "alice",
    video: str | None = None,
    ident: str | None = None,
    created_at: Any = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": ident or str(uuid.uuid4()),
        "user_id": user,
        "kind": kind,
        "author": "Ana",
        "text": "nice one",
        "created_at": created_at or datetime.now(UTC).isoformat(),
    }
    if video is not None:
        doc["video_id"] = video
    return doc


def signed(body: bytes, secret: str, *, msg_id: str = "msg_1", age_s: float = 0) -> dict[str, str]:
    stamp = datetime.now(UTC) - timedelta(seconds=age_s)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, body.decode()),
    }


async def post(
    client: httpx.AsyncClient, items: list[dict[str, Any]], secret: str | None = None
) -> httpx.Response:
    body = json.dumps({"interactions": items}).encode()
    headers = signed(body, secret) if secret else {"content-type": "application/json"}
    return await client.post("/sink/interactions", content=body, headers=headers)


async def stats(client: httpx.AsyncClient, user: str | None = None) -> dict[str, int]:
    response = await client.get("/sink/stats", params={"user_id": user} if user else None)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def faults(client: httpx.AsyncClient, **knobs: Any) -> httpx.Response:
    return await client.put("/sink/admin/faults", json=knobs)


async def test_stores_and_deduplicates(settings: Settings) -> None:
    """Items are stored once per id; repeats count as duplicates, overall and per user."""
    video = item("video")
    batch = [video, item("comment", video=video["id"]), item("dm", user="bob")]
    async with sink_client(settings) as client:
        first = await post(client, batch)
        again = await post(client, [video])
        twice = item()
        inside = await post(client, [twice, twice])
        total, alice, bob = (
            await stats(client),
            await stats(client, "alice"),
            await stats(client, "bob"),
        )
        nobody = await stats(client, "carol")
    assert first.status_code == 200 and first.json() == {"accepted": 3, "new": 3, "duplicates": 0}
    assert again.json() == {"accepted": 1, "new": 0, "duplicates": 1}
    assert inside.json() == {"accepted": 2, "new": 1, "duplicates": 1}
    assert total == {
        "received": 6,
        "unique": 4,
        "duplicates": 2,
        "requests": 3,
        "rejected": 0,
        "orphan_comments": 0,
    }
    assert (alice["received"], alice["unique"], alice["duplicates"], alice["requests"]) == (
        5,
        3,
        2,
        3,
    )
    assert (bob["received"], bob["unique"], bob["requests"]) == (1, 1, 1)
    assert nobody == {**ZERO, "requests": 0, "rejected": 0, "orphan_comments": 0}
    assert settings.database_url
    kept = sql(
        settings.database_url, "select payload from sink_received where id = %s", (video["id"],)
    )
    assert kept == [(video,)]


async def test_good_signature_is_accepted_and_id_recorded(settings: Settings) -> None:
    """A Standard Webhooks signature made with the secret is accepted; webhook-id is kept."""
    one = item()
    body = json.dumps({"interactions": [one]}).encode()
    async with sink_client(settings, webhook_secret=SECRET) as client:
        response = await client.post(
            "/sink/interactions", content=body, headers=signed(body, SECRET, msg_id="msg_42")
        )
        counts = await stats(client)
    assert response.status_code == 200, response.text
    assert counts["unique"] == 1 and counts["rejected"] == 0
    assert settings.database_url
    assert sql(settings.database_url, "select webhook_id from sink_received") == [("msg_42",)]


async def test_missing_bad_or_stale_signature_is_refused(settings: Settings) -> None:
    """Unsigned, wrongly signed, stale or malformed signatures get 401 and store nothing."""
    body = json.dumps({"interactions": [item()]}).encode()
    attempts = [
        {"content-type": "application/json"},
        signed(body, SECRET2),
        signed(body, SECRET, age_s=600),
        signed(body, SECRET, age_s=-600),
        {**signed(body, SECRET), "webhook-signature": "garbage"},
        {**signed(body, SECRET), "webhook-timestamp": "soon"},
    ]
    async with sink_client(settings, webhook_secret=SECRET) as client:
        answers = [
            await client.post("/sink/interactions", content=body, headers=h) for h in attempts
        ]
        tampered = await client.post(
            "/sink/interactions",
            content=body.replace(b"nice", b"evil"),
            headers=signed(body, SECRET),
        )
        counts, alice = await stats(client), await stats(client, "alice")
    for answer in [*answers, tampered]:
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "invalid_signature"
    assert {k: counts[k] for k in ZERO} == ZERO
    assert counts["rejected"] == 7 and counts["requests"] == 7
    assert alice["rejected"] == 7


async def test_any_rotated_secret_verifies(settings: Settings) -> None:
    """With two secrets configured, a signature made with either is accepted."""
    async with sink_client(settings, webhook_secret=f"{SECRET} {SECRET2}") as client:
        old = await post(client, [item()], secret=SECRET)
        new = await post(client, [item()], secret=SECRET2)
        counts = await stats(client)
    assert (old.status_code, new.status_code) == (200, 200)
    assert counts["unique"] == 2 and counts["rejected"] == 0


@pytest.mark.parametrize("secret", [None, SECRET])
async def test_malformed_bodies_get_400_and_store_nothing(
    settings: Settings, secret: str | None
) -> None:
    """Bad JSON, wrong shapes, bad ids and naive or numeric timestamps: 400 with the field."""
    cases: list[tuple[bytes, str | None]] = [
        (b"not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b"[" * 100_000, "body"),
        (b'{"interactions": [{"id": 1e999}]}', "body"),
        (b"{}", "interactions"),
        (b'{"interactions": []}', "interactions"),
        (b'{"interactions": {"id": 1}}', "interactions"),
        (json.dumps({"interactions": [item(ident="not-a-uuid")]}).encode(), "interactions.0.id"),
        (
            json.dumps({"interactions": [item(), item(created_at="2024-05-01T10:00:00")]}).encode(),
            "interactions.1.created_at",
        ),
        (
            json.dumps({"interactions": [item(created_at=1714557600)]}).encode(),
            "interactions.0.created_at",
        ),
        (json.dumps({"interactions": [item("comment")]}).encode(), "interactions.0.video_id"),
        (json.dumps({"interactions": [item("story")]}).encode(), "interactions.0.kind"),
        (json.dumps({"interactions": [item(user="no spaces")]}).encode(), "interactions.0.user_id"),
        (json.dumps({"interactions": [item()] * 5001}).encode(), "interactions"),
    ]
    async with sink_client(settings, webhook_secret=secret) as client:
        for body, field in cases:
            headers = signed(body, secret) if secret and body.isascii() else {}
            response = await client.post("/sink/interactions", content=body, headers=headers)
            if secret and not body.isascii():
                assert response.status_code == 401  # cannot even be verified
                continue
            assert response.status_code == 400, (body[:60], response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_input" and error["message"]
            assert error.get("field") == field, (body[:60], error)
        counts = await stats(client)
    assert {k: counts[k] for k in ZERO} == ZERO


async def test_injected_errors_carry_retry_after_and_store_nothing(settings: Settings) -> None:
    """error_rate=1 answers 503 with Retry-After; the status is configurable; nothing stored."""
    async with sink_client(settings, sink_error_rate=1.0, sink_retry_after_s=7) as client:
        first = await post(client, [item()])
        assert (await faults(client, status=429, retry_after_s=0.25)).status_code == 200
        second = await post(client, [item()])
        counts = await stats(client)
    assert first.status_code == 503 and first.headers["retry-after"] == "7"
    assert first.json()["error"]["code"] == "injected_fault"
    assert second.status_code == 429 and second.headers["retry-after"] == "0.25"
    assert {k: counts[k] for k in ZERO} == ZERO and counts["requests"] == 2


async def test_hang_and_latency_delay_the_answer(settings: Settings) -> None:
    """A hang and an added latency each hold the answer back by at least their length."""
    async with sink_client(settings, sink_hang_rate=1.0, sink_hang_s=0.5) as client:
        start = trio.current_time()
        slow = await post(client, [item()])
        took = trio.current_time() - start
        await faults(client, hang_rate=0, latency_s=0.3)
        start = trio.current_time()
        late = await post(client, [item()])
        latency = trio.current_time() - start
    # lower bounds only: trio never wakes a sleeper before its deadline
    assert slow.status_code == 200 and took >= 0.5
    assert late.status_code == 200 and latency >= 0.3


async def test_a_request_abandoned_during_a_hang_stores_nothing(settings: Settings) -> None:
    """A client that gives up during a hang cancels the handler: its items are never stored."""
    hang_s = 0.5
    async with sink_client(settings, sink_hang_rate=1.0, sink_hang_s=hang_s) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/sink/interactions", json={"interactions": [item(user="bob")]}, timeout=0.1
            )
        # A request sent afterwards that sleeps twice the hang ends after the abandoned
        # handler would have woken and stored bob's item, had it not been cancelled.
        await faults(client, hang_rate=0, latency_s=2 * hang_s)
        marker = await post(client, [item(user="carol")])
        bob, carol = await stats(client, "bob"), await stats(client, "carol")
    assert marker.status_code == 200 and carol["received"] == 1
    assert bob["received"] == 0, bob


async def test_a_halted_sink_answers_503_and_stores_nothing(
    settings: Settings, db_url: str
) -> None:
    """Halted (its process stops): 503 with Retry-After, nothing stored; taken times are kept."""
    app = create_sink_app(settings, configure_logs=False)
    with trio.fail_after(30):
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            before = datetime.now(UTC)
            assert (await post(client, [item(ident=str(uuid.UUID(int=1)))])).status_code == 200
            after = datetime.now(UTC)
            halt(app)
            refused = await post(client, [item(ident=str(uuid.UUID(int=2)))])
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "shutting_down"
            counts = await stats(client)
            assert (counts["received"], counts["unique"]) == (1, 1)
    ((taken,),) = sql(db_url, "select first_seen_at from sink_received")
    assert before <= taken <= after


async def test_fault_admin_validates_and_applies(settings: Settings) -> None:
    """PUT changes only the given knobs, refuses bad values with 400, DELETE restores."""
    bad: list[Any] = [
        {"error_rate": 2},
        {"error_rate": "x"},
        {"hang_rate": True},
        {"latency_s": -1},
        {"status": 200},
        {"status": 503.5},
        {"mode": "explode"},
        {"too_large_over": -1},
        {"seed": "x"},
        {"colour": "red"},
        [1, 2],
    ]
    async with sink_client(settings, sink_retry_after_s=3) as client:
        initial = (await client.get("/sink/admin/faults")).json()
        refused = [await client.put("/sink/admin/faults", json=b) for b in bad]
        not_json = await client.put("/sink/admin/faults", content=b"{nope")
        unchanged = (await client.get("/sink/admin/faults")).json()
        changed = await faults(client, error_rate=0.5, mode="garbage", too_large_over=10)
        cleared = await faults(client, mode=None)
        restored = (await client.delete("/sink/admin/faults")).json()
    assert initial == {
        "error_rate": 0.0,
        "hang_rate": 0.0,
        "latency_s": 0.0,
        "retry_after_s": 3.0,
        "hang_s": 3600.0,
        "status": 503,
        "mode": None,
        "too_large_over": None,
    }
    for body, answer in zip(bad, refused, strict=True):
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"
    assert refused[0].json()["error"]["field"] == "error_rate"
    assert not_json.status_code == 400
    assert unchanged == initial
    assert changed.json() == {**initial, "error_rate": 0.5, "mode": "garbage", "too_large_over": 10}
    assert cleared.json()["mode"] is None and cleared.json()["error_rate"] == 0.5
    assert restored == initial


async def test_seeded_fault_decisions_repeat(settings: Settings) -> None:
    """The same seed gives the same sequence of injected errors."""

    async def run(client: httpx.AsyncClient) -> list[int]:
        await faults(client, error_rate=0.5, seed=1234)
        return [(await post(client, [item()])).status_code for _ in range(12)]

    async with sink_client(settings) as client:
        first, second = await run(client), await run(client)
    assert first == second and {200, 503} <= set(first)


async def test_comments_before_their_video_are_counted(settings: Settings) -> None:
    """A comment whose video comes later in the request, or was never received, is an orphan."""
    v1, v2, v3 = (item("video") for _ in range(3))
    async with sink_client(settings) as client:
        await post(client, [item("comment", video=v1["id"]), v1])  # video after its comment
        await post(client, [item("comment", user="bob", video=str(uuid.uuid4()))])  # never sent
        await post(client, [v2])
        await post(client, [item("comment", video=v2["id"])])  # video in an earlier request
        await post(client, [v3, item("comment", video=v3["id"]), item("dm")])  # in order
        total, alice, bob = (
            await stats(client),
            await stats(client, "alice"),
            await stats(client, "bob"),
        )
    assert total["orphan_comments"] == 2
    assert (alice["orphan_comments"], bob["orphan_comments"]) == (1, 1)
    assert total["unique"] == 8  # orphans are stored all the same


async def test_garbage_mode_answers_200_without_json(settings: Settings) -> None:
    """mode=garbage stores the items and answers 200 with a body that is not JSON."""
    async with sink_client(settings) as client:
        await faults(client, mode="garbage")
        response = await post(client, [item()])
        counts = await stats(client)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert counts["unique"] == 1


async def test_close_mode_drops_the_connection_after_storing(settings: Settings) -> None:
    """mode=close stores, then cuts the response short; a retry is counted as a duplicate."""
    one = item()
    async with sink_client(settings) as client:
        await faults(client, mode="close")
        with pytest.raises(httpx.RemoteProtocolError):
            await post(client, [one])
        await faults(client, mode=None)
        retry = await post(client, [one])
        counts = await stats(client)
    assert retry.json() == {"accepted": 1, "new": 0, "duplicates": 1}
    assert (counts["received"], counts["unique"]) == (2, 1)


async def test_too_large_over_refuses_big_requests(settings: Settings) -> None:
    """too_large_over=N answers 413 to requests of more than N items and stores nothing of them."""
    async with sink_client(settings) as client:
        await faults(client, too_large_over=2)
        big = await post(client, [item() for _ in range(3)])
        fits = await post(client, [item() for _ in range(2)])
        counts = await stats(client)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert fits.status_code == 200
    assert counts["unique"] == 2


async def test_full_request_of_5000_items(settings: Settings) -> None:
    """The largest allowed request is accepted in one go."""
    async with sink_client(settings) as client:
        response = await post(client, [item() for _ in range(5000)])
        counts = await stats(client)
    assert response.json() == {"accepted": 5000, "new": 5000, "duplicates": 0}
    assert counts["unique"] == 5000


async def test_reset_and_received_ids(settings: Settings) -> None:
    """received lists a user's ids in arrival order; reset empties the store and counters."""
    items = [item() for _ in range(3)]
    async with sink_client(settings) as client:
        await post(client, items)
        await post(client, [item(user="bob")])
        ids = (await client.get("/sink/admin/received", params={"user_id": "alice"})).json()
        missing = await client.get("/sink/admin/received")
        bad_user = await client.get("/sink/stats", params={"user_id": "a b"})
        reset = await client.post("/sink/admin/reset")
        counts = await stats(client)
    assert sorted(ids["ids"]) == sorted(i["id"] for i in items)
    assert missing.status_code == 400 and bad_user.status_code == 400
    assert reset.json() == {"status": "reset"}
    assert counts == {**ZERO, "requests": 0, "rejected": 0, "orphan_comments": 0}


async def test_admin_needs_the_api_token_when_set(settings: Settings) -> None:
    """With SIM_API_TOKEN set, /sink/admin/* needs the bearer token; receiving does not."""
    async with sink_client(settings, api_token="t0ken") as client:
        denied = await client.post("/sink/admin/reset")
        allowed = await client.get("/sink/admin/faults", headers={"Authorization": "Bearer t0ken"})
        delivered = await post(client, [item()])
    assert denied.status_code == 401
    assert allowed.status_code == 200 and delivered.status_code == 200


async def test_openapi_documents_the_sink(settings: Settings) -> None:
    """The standalone sink's OpenAPI document lists its endpoints under the sink tag."""
    async with sink_client(settings) as client:
        doc = (await client.get("/openapi.json")).json()
        health = await client.get("/readyz")
    assert health.status_code == 200
    post_op = doc["paths"]["/sink/interactions"]["post"]
    assert post_op["tags"] == ["sink"] and "requestBody" in post_op
    assert {"/sink/stats", "/sink/admin/faults", "/sink/admin/reset"} <= set(doc["paths"])
