"""Outbox rows made by sim's own generator, for scenarios that start from stored rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg

from sim.pipeline.content import DemoSpec, OfflineProvider
from sim.pipeline.store import to_rows

__all__ = ["demo_spec", "outbox_rows", "seed_users"]


def demo_spec(total: int, seed: int = 1) -> DemoSpec:
    """A spec of ``total`` items in the default demo's proportions (8 : 100 : 100)."""
    videos = max(1, total * 8 // 208)
    comments = total * 100 // 208
    return DemoSpec(videos, comments, total - videos - comments, seed)


def outbox_rows(
    users: int, per_user: int, *, status: str = "pending", seed: int = 1
) -> Iterator[tuple[Any, ...]]:
    """COPY tuples (``bench.pg.COPY_COLUMNS``) for ``users`` users of ``per_user`` items each.

    Content, ids and JSON documents come from ``OfflineProvider`` and ``to_rows``, the code
    sim stores with, so payload sizes and shapes are the real ones.
    """
    provider = OfflineProvider()
    anchor = datetime.now(UTC)
    attempts = 1 if status == "sending" else 0
    for u in range(users):
        user_id = f"bench-{u:04d}"
        run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"sim-bench/{seed}/{user_id}")
        for drafts in provider.initial(demo_spec(per_user, seed + u), 1000):
            for r in to_rows(user_id, run_id, anchor, drafts):
                yield (*r.copy_values(user_id), status, attempts)


def seed_users(url: str, n_users: int, per_user: int, seed: int = 1) -> None:
    """``demo_users`` rows matching ``bench.data.outbox_rows``: generated, not yet live."""
    with psycopg.connect(url) as conn:
        conn.execute("delete from demo_users")
        for u in range(n_users):
            user_id = f"bench-{u:04d}"
            spec = demo_spec(per_user, seed + u)
            conn.execute(
                "insert into demo_users (user_id, state, enabled, run_id, seed, videos, comments,"
                " dms, live_per_minute, initial_total, generated, enabled_at)"
                " values (%s, 'initializing', true, %s, %s, %s, %s, %s, 0, %s, %s, now())",
                (
                    user_id,
                    uuid.uuid5(uuid.NAMESPACE_URL, f"sim-bench/{seed}/{user_id}"),
                    spec.seed,
                    spec.videos,
                    spec.comments,
                    spec.dms,
                    per_user,
                    per_user,
                ),
            )
        conn.commit()
