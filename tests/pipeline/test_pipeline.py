"""The demo pipeline end to end: sim and a sink over real HTTP, on real PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import trio
from conftest import sql
from pipekit import stack

from sim.settings import Settings


async def test_enable_delivers_the_initial_burst(settings: Settings) -> None:
    """Enable → 8 videos, 100 comments, 100 DMs all sent; the sink holds 208 unique ids."""
    async with stack(settings) as st:
        r = await st.enable("alice", seed=7)
        assert r.status_code == 202, r.text
        doc = await st.wait_settled("alice")
        assert doc["counts"] == {"pending": 0, "sending": 0, "sent": 208, "failed": 0}
        assert doc["state"] == "live" and doc["live_at"] is not None
        stats = await st.sink_stats("alice")
        assert stats["unique"] == 208 and stats["orphan_comments"] == 0
        kinds = dict(
            sql(
                st.settings.database_url or "",
                "select kind, count(*) from interactions where user_id = 'alice' group by kind",
            )
        )
        assert kinds == {"video": 8, "comment": 100, "dm": 100}


async def test_no_comment_is_sent_before_its_video(settings: Settings) -> None:
    """Every comment's sent_at is not earlier than its video's, and the sink saw no orphan."""
    async with stack(settings) as st:
        await st.enable("bob", seed=3, comments=300)
        await st.wait_settled("bob")
        early = sql(
            st.settings.database_url or "",
            "select count(*) from interactions c join interactions v on v.id = c.video_id"
            " where c.kind = 'comment' and c.sent_at < v.sent_at",
        )
        assert early == [(0,)]
        assert (await st.sink_stats("bob"))["orphan_comments"] == 0


async def test_every_timestamp_is_aware(settings: Settings) -> None:
    """Status, pages and delivered payloads carry ISO 8601 timestamps with an offset."""
    async with stack(settings) as st:
        await st.enable("carol", seed=1, comments=5, dms=5)
        doc = await st.wait_settled("carol")
        assert datetime.fromisoformat(doc["enabled_at"]).tzinfo is not None
        page = (await st.sim.get("/v1/users/carol/interactions", params={"limit": 50})).json()
        assert len(page["items"]) == 18
        for item in page["items"]:
            for key in ("created_at", "sent_at"):
                assert datetime.fromisoformat(item[key]).utcoffset() is not None
            assert datetime.fromisoformat(item["payload"]["created_at"]).utcoffset() is not None


async def test_enable_is_idempotent(settings: Settings) -> None:
    """A second PUT while on answers 200 and never starts a second initial burst."""
    async with stack(settings) as st:
        first = await st.enable("dave", seed=5)
        second = await st.enable("dave", seed=5)
        assert (first.status_code, second.status_code) == (202, 200)
        doc = await st.wait_settled("dave")
        assert doc["initial_total"] == 208 and doc["total"] == 208
        assert (await st.sink_stats("dave"))["unique"] == 208


async def test_disable_stops_live_generation_and_purge_empties(settings: Settings) -> None:
    """Live items arrive while on; none after DELETE; ?purge=true leaves no rows."""
    async with stack(settings) as st:
        await st.enable("erin", seed=9, comments=4, dms=4, live_per_minute=600)
        await st.wait_for("erin", lambda d: d["total"] >= 16 + 5, timeout_s=30)
        r = await st.sim.delete("/v1/users/erin/demo")
        assert r.status_code == 200 and r.json()["state"] == "disabled"
        # DELETE answers once the user's simulation has stopped: nothing left to add rows
        assert "erin" not in st.running()
        total = (await st.status("erin"))["total"]
        assert "erin" not in st.running()
        assert (await st.status("erin"))["total"] == total
        again = await st.sim.delete("/v1/users/erin/demo")
        assert again.status_code == 200
        purged = await st.sim.delete("/v1/users/erin/demo", params={"purge": "true"})
        assert purged.status_code == 200 and purged.json()["total"] == 0
        assert sql(
            st.settings.database_url or "",
            "select count(*) from interactions where user_id = 'erin'",
        ) == [(0,)]


async def test_same_seed_same_content(settings: Settings) -> None:
    """Two users with one seed get the same texts and authors; another seed differs."""
    async with stack(settings) as st:
        for user, seed in (("s1", 11), ("s2", 11), ("s3", 12)):
            await st.enable(user, seed=seed, comments=20, dms=20, live_per_minute=0)
        for user in ("s1", "s2", "s3"):
            await st.wait_settled(user)

        def content(user: str) -> list[tuple[object, ...]]:
            return sql(
                st.settings.database_url or "",
                "select seq, kind, payload->'author', payload->>'text', payload->>'title'"
                " from interactions where user_id = %s order by seq",
                (user,),
            )

        assert content("s1") == content("s2")
        assert content("s1") != content("s3")


async def test_receiver_outage_with_retry_after_then_recovery(settings: Settings) -> None:
    """The receiver answers 503 + Retry-After for a while; everything is delivered after."""
    async with stack(settings) as st:
        await st.set_faults(error_rate=1.0, retry_after_s=0.2)
        await st.enable("frank", seed=2, comments=30, dms=30)
        await st.wait_for("frank", lambda d: d["total"] == 68)
        with trio.fail_after(30):  # the receiver has refused a few rounds of requests
            while True:
                if (await st.sink_stats())["requests"] >= 5:
                    break
                await trio.sleep(0.05)
        doc = await st.status("frank")
        assert doc["counts"]["sent"] == 0 and doc["counts"]["failed"] == 0
        await st.set_faults(error_rate=0.0)
        doc = await st.wait_settled("frank")
        assert doc["counts"]["sent"] == 68
        assert (await st.sink_stats("frank"))["unique"] == 68


async def test_permanent_4xx_marks_rows_failed_with_reason(settings: Settings) -> None:
    """A 400 from the receiver fails the rows for good and keeps the reason."""
    async with stack(settings) as st:
        await st.set_faults(error_rate=1.0, status=400)
        await st.enable("gina", seed=2, videos=2, comments=3, dms=3, live_per_minute=0)
        doc = await st.wait_for(
            "gina", lambda d: d["counts"]["failed"] == 8 and d["state"] == "live"
        )
        assert doc["counts"]["sent"] == 0
        page = (await st.sim.get("/v1/users/gina/interactions")).json()
        for item in page["items"]:
            if item["kind"] == "comment":  # never sent before their video: failed with it
                assert item["last_error"] == "its video could not be delivered"
            else:
                assert "HTTP 400" in item["last_error"], item


async def test_a_crashing_simulation_does_not_affect_another_user(settings: Settings) -> None:
    """One user's generator raises; it is restarted with last_error kept; others finish."""
    from sim.pipeline.content import DemoSpec, Draft, OfflineProvider

    class Flaky(OfflineProvider):
        def initial(self, spec: DemoSpec, batch_size: int):  # type: ignore[no-untyped-def]
            if spec.seed == 666:
                raise RuntimeError("generator exploded")
            return super().initial(spec, batch_size)

        def live(self, spec: DemoSpec, n: int) -> Draft:
            return super().live(spec, n)

    async with stack(settings.replace(restart_backoff_s=0.05), provider_factory=Flaky) as st:
        await st.enable("crashy", seed=666)
        await st.enable("steady", seed=1)
        doc = await st.wait_settled("steady")
        assert doc["counts"]["sent"] == 208
        bad = await st.wait_for("crashy", lambda d: d["restarts"] >= 2)
        assert "generator exploded" in (bad["last_error"] or "")
        assert (await st.sim.get("/healthz")).status_code == 200
