"""From drafts to outbox rows: ids, timestamps and the delivered JSON document."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sim.db.outbox import NewRow
from sim.pipeline.content import Draft

__all__ = ["interaction_id", "thread_id", "to_rows"]


def interaction_id(run_id: uuid.UUID, seq: int) -> uuid.UUID:
    """The interaction's id: stable for a run and position, unique across runs."""
    return uuid.uuid5(run_id, str(seq))


def thread_id(run_id: uuid.UUID, thread: int) -> uuid.UUID:
    """A DM thread's id: stable for a run and thread number, never an interaction's id."""
    return uuid.uuid5(run_id, f"thread:{thread}")


def to_rows(
    user_id: str, run_id: uuid.UUID, anchor: datetime, drafts: Sequence[Draft]
) -> list[NewRow]:
    """Rows for ``drafts``; ``created_at`` is ``anchor`` (aware) minus each draft's age."""
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    rows = []
    threads: dict[int, str] = {}  # a thread's messages mostly come in one batch
    for d in drafts:
        ident = interaction_id(run_id, d.seq)
        # videos come first in a run, so video number i has seq i
        video_seq = d.video_index
        video_id = interaction_id(run_id, video_seq) if video_seq is not None else None
        created_at = anchor - timedelta(seconds=d.age_s)
        payload = {
            "id": str(ident),
            "user_id": user_id,
            "kind": d.kind,
            "video_id": str(video_id) if video_id else None,
            "author": d.author,
            "text": d.text,
            "created_at": created_at.isoformat(),
            **d.extra,
        }
        if d.parent_seq is not None:  # a reply's comment, or the previous message of a thread
            payload["parent_id"] = str(interaction_id(run_id, d.parent_seq))
        if d.kind == "dm" and "thread" in d.extra:
            t = d.extra["thread"]
            if t not in threads:
                threads[t] = str(thread_id(run_id, t))
            payload["thread_id"] = threads[t]
        rows.append(
            NewRow(
                ident,
                d.seq,
                d.kind,
                video_id,
                json.dumps(payload, ensure_ascii=False),
                created_at,
                video_seq,
            )
        )
    return rows
