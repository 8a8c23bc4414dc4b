"""Redelivery, the attempt log, 410 Gone, the circuit in /readyz: sim and a sink over HTTP."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import trio
from pipekit import Stack, stack

from sim.settings import Settings

SECRET = "whsec_" + base64.b64encode(b"attempt-log-test-secret-32-byte").decode()


async def _redeliver(st: Stack, user: str, **body: Any) -> dict[str, Any]:
    r = await st.sim.post(f"/v1/users/{user}/demo/redeliver", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_redeliver_after_a_4xx_failed_batch_delivers_all(settings: Settings) -> None:
    """Rows failed by a 400 are re-queued by redeliver and all arrive; a repeat re-queues none."""
    async with stack(settings) as st:
        await st.set_faults(error_rate=1.0, status=400)
        await st.enable("ann", seed=1, videos=2, comments=10, dms=10)
        await st.wait_for("ann", lambda d: d["counts"]["failed"] == 22)
        await st.set_faults(error_rate=0.0)
        assert (await _redeliver(st, "ann"))["requeued"] == 22
        doc = await st.wait_for("ann", lambda d: d["counts"]["sent"] == 22)
        assert doc["counts"]["failed"] == 0
        assert (await st.sink_stats("ann"))["unique"] == 22
        again = await _redeliver(st, "ann")
        assert again["requeued"] == 0 and again["statuses"] == ["failed"]
        # sent rows, for a main app that lost its data, and a since filter in the future
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await _redeliver(st, "ann", statuses=["sent"], since=future))["requeued"] == 0
        assert (await _redeliver(st, "ann", statuses=["sent"]))["requeued"] == 22
        await st.wait_for("ann", lambda d: d["counts"]["sent"] == 22)


async def test_redeliver_rejects_bad_input(settings: Settings) -> None:
    """Unknown statuses, naive timestamps, unknown fields and users: 4xx with the error body."""
    async with stack(settings) as st:
        await st.enable("bob", seed=1, videos=1, comments=0, dms=0)
        bodies: list[dict[str, Any]] = [
            {"statuses": ["pending"]},
            {"statuses": []},
            {"since": "2026-01-01T00:00:00"},
            {"since": "yesterday"},
            {"extra": 1},
        ]
        for body in bodies:
            r = await st.sim.post("/v1/users/bob/demo/redeliver", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["code"] == "invalid_input"
        r = await st.sim.post("/v1/users/nobody/demo/redeliver", json={})
        assert r.status_code == 404
        r = await st.sim.post("/v1/users/bad!id/demo/redeliver", json={})
        assert r.status_code == 400


async def test_attempt_log_pages_by_keyset(settings: Settings) -> None:
    """Every request is in the attempt log, newest first; cursors walk it without overlap."""
    signed = settings.replace(send_batch_size=5, webhook_secret=SECRET)
    async with stack(signed) as st:
        await st.set_faults(error_rate=1.0, status=503, retry_after_s=0)
        await st.enable("cat", seed=1, videos=0, comments=0, dms=10)
        with trio.fail_after(30):  # a refused request is in the attempt log
            while True:
                r = await st.sim.get("/v1/users/cat/deliveries", params={"limit": 10})
                if any(e["outcome"] == "retry" for e in r.json()["items"]):
                    break
                await trio.sleep(0.05)
        await st.set_faults(error_rate=0.0)
        await st.wait_settled("cat")
        seen: list[dict[str, Any]] = []
        with trio.fail_after(10):
            while (
                not any(e["outcome"] == "ok" for e in seen)
                or sum(e["items"] for e in seen if e["outcome"] == "ok") < 10
            ):
                seen, cursor = [], None
                while True:
                    params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
                    r = await st.sim.get("/v1/users/cat/deliveries", params=params)
                    assert r.status_code == 200, r.text
                    page = r.json()
                    seen.extend(page["items"])
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
                await trio.sleep(0.1)
        ids = [e["id"] for e in seen]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        retry = next(e for e in seen if e["outcome"] == "retry")
        assert retry["status_code"] == 503 and retry["error"].startswith("HTTP 503")
        assert retry["webhook_id"].startswith("msg_") and retry["latency_s"] >= 0
        assert retry["next_attempt_at"] is not None
        r = await st.sim.get("/v1/users/cat/deliveries", params={"cursor": "x"})
        assert r.status_code == 400


async def test_410_gone_turns_demo_mode_off(settings: Settings) -> None:
    """The main app answering 410 Gone turns the user's demo mode off, with the reason kept."""
    async with stack(settings) as st:
        await st.set_faults(error_rate=1.0, status=410)
        await st.enable("dan", seed=1, videos=1, comments=0, dms=3)
        doc = await st.wait_for("dan", lambda d: d["state"] == "disabled")
        assert not doc["enabled"] and "410 Gone" in doc["last_error"]
        assert doc["counts"]["failed"] == 0


async def test_readyz_shows_the_circuit_and_stays_200(settings: Settings) -> None:
    """With the main app failing every request the circuit opens: /readyz (still 200), the
    dashboard's data and /metrics show it; it closes once the main app answers."""
    async with stack(
        settings.replace(circuit_failure_threshold=2, circuit_probe_interval_s=0.2)
    ) as st:
        await st.set_faults(error_rate=1.0, status=503, retry_after_s=0)
        await st.enable("eve", seed=1, videos=0, comments=0, dms=5)
        with trio.fail_after(20):
            while True:
                r = await st.sim.get("/readyz")
                assert r.status_code == 200
                if r.json()["circuit"]["state"] != "closed":
                    break
                await trio.sleep(0.05)
        with trio.fail_after(20):  # the attempt log is written in batches, behind delivery
            while True:
                board = (await st.sim.get("/dashboard/api/users")).json()
                if board["recent_errors"]:
                    break
                await trio.sleep(0.05)
        assert board["circuit"]["state"] in ("open", "half_open")
        assert board["recent_errors"][0]["error"].startswith("HTTP 503")
        metrics = (await st.sim.get("/metrics")).text
        assert 'sim_circuit_transitions_total{state="open"} 1.0' in metrics
        await st.set_faults(error_rate=0.0)
        doc = await st.wait_settled("eve")
        assert doc["counts"]["sent"] == 5
        r = await st.sim.get("/readyz")
        assert r.json()["circuit"]["state"] == "closed"
