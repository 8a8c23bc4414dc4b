"""Deliveries are signed per Standard Webhooks; the `standardwebhooks` package checks them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import trio
from conftest import served, sql
from quart import request
from quart_trio import QuartTrio
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from sim.db.outbox import Claimed
from sim.metrics import Metrics
from sim.pipeline.delivery import Deliverer
from sim.settings import Settings
from sim.sink import create_sink_app

SECRET_A = "whsec_" + base64.b64encode(b"sender-secret-a-of-32-bytes-long").decode()
SECRET_B = "whsec_" + base64.b64encode(b"sender-secret-b-of-32-bytes-long").decode()
SECRET_C = "whsec_" + base64.b64encode(b"a-secret-nobody-else-knows-about").decode()

RUN = uuid.UUID(int=1)  # a run id for rows that never touch the database


@dataclass
class Captured:
    """What the tiny receiver saw, and the statuses it answers with (then 200)."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, Captured]]:
    """A tiny HTTP receiver on a real socket that records every request it gets."""
    captured = Captured()
    app = QuartTrio("receiver")

    @app.post("/hook")
    async def hook() -> tuple[str, int]:
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        captured.requests.append(({k.lower(): v for k, v in request.headers.items()}, body))
        return "{}", captured.statuses.pop(0) if captured.statuses else 200

    with trio.fail_after(30):
        async with served(app) as url:
            yield url + "/hook", captured


def rows(n: int = 2, user: str = "alice") -> list[Claimed]:
    """Claimed rows whose payloads are valid interactions (DMs)."""
    out = []
    for seq in range(n):
        ident = uuid.uuid4()
        payload = {
            "id": str(ident),
            "user_id": user,
            "kind": "dm",
            "author": "Ana",
            "text": "héllo ✓",  # non-ASCII: the signature covers the exact bytes sent
            "created_at": datetime.now(UTC).isoformat(),
        }
        out.append(Claimed(ident, user, seq, "dm", 1, json.dumps(payload, ensure_ascii=False), RUN))
    return out


@asynccontextmanager
async def deliverer(url: str, secret: str | None) -> AsyncIterator[Deliverer]:
    """sim's Deliverer posting to ``url`` with ``secret`` (one or more, space-separated)."""
    settings = Settings(main_app_url=url, webhook_secret=secret, request_timeout_s=5)
    async with httpx.AsyncClient() as client:
        yield Deliverer(client, settings, Metrics())


def verify(secret: str, headers: dict[str, str], body: bytes) -> object:
    """The independent check: `standardwebhooks` verifies the request as received."""
    return Webhook(secret).verify(body.decode(), headers)


async def test_requests_carry_a_valid_standard_webhooks_signature() -> None:
    """Each request has webhook-id/-timestamp/-signature that `standardwebhooks` accepts."""
    batch = rows(3)
    async with receiver() as (url, captured), deliverer(url, SECRET_A) as d:
        outcomes = await d.deliver(batch)
    assert [o.status for o in outcomes] == ["sent"] * 3
    [(headers, body)] = captured.requests
    assert verify(SECRET_A, headers, body) == {
        "interactions": [json.loads(r.payload_json) for r in batch]
    }
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 30
    version, _, signature = headers["webhook-signature"].partition(",")
    assert version == "v1" and len(base64.b64decode(signature)) == 32


async def test_rotation_signs_with_the_first_secret() -> None:
    """With "A B" configured, requests are signed with A only (receivers on B alone refuse)."""
    async with receiver() as (url, captured), deliverer(url, f"{SECRET_A} {SECRET_B}") as d:
        await d.deliver(rows(1))
    [(headers, body)] = captured.requests
    verify(SECRET_A, headers, body)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET_B, headers, body)


async def test_retries_keep_the_webhook_id_and_are_signed_afresh() -> None:
    """A retried request keeps its webhook-id and is validly signed each time; another differs."""
    batch, other = rows(2), rows(2)
    async with receiver() as (url, captured), deliverer(url, SECRET_A) as d:
        captured.statuses = [503]
        first = await d.deliver(batch)
        second = await d.deliver(batch)
        await d.deliver(other)
    assert [o.status for o in first] == ["pending", "pending"]
    assert [o.status for o in second] == ["sent", "sent"]
    ids = [headers["webhook-id"] for headers, _ in captured.requests]
    assert ids[0] == ids[1] != ids[2]
    for headers, body in captured.requests:
        verify(SECRET_A, headers, body)


async def test_unsigned_without_a_secret() -> None:
    """With SIM_WEBHOOK_SECRET unset, no webhook-* headers are sent."""
    async with receiver() as (url, captured), deliverer(url, None) as d:
        await d.deliver(rows(1))
    [(headers, _)] = captured.requests
    assert not [k for k in headers if k.startswith("webhook-")]


async def test_bundled_sink_accepts_a_rotated_secret_and_refuses_others(
    settings: Settings,
) -> None:
    """Sender on A → sink on "B A" stores it; sender on C → 401, failed for good, nothing kept."""
    sink = create_sink_app(
        settings.replace(webhook_secret=f"{SECRET_B} {SECRET_A}"), configure_logs=False
    )
    good, bad = rows(2, "alice"), rows(2, "mallory")
    with trio.fail_after(30):
        async with served(sink) as base:
            url = base + "/sink/interactions"
            async with deliverer(url, SECRET_A) as d:
                accepted = await d.deliver(good)
            async with deliverer(url, SECRET_C) as d:
                refused = await d.deliver(bad)
    assert [o.status for o in accepted] == ["sent", "sent"]
    assert [o.status for o in refused] == ["failed", "failed"]
    assert all("401" in (o.error or "") for o in refused)
    assert settings.database_url
    kept = sql(settings.database_url, "select user_id, count(*) from sink_received group by 1")
    assert kept == [("alice", 2)]
