"""Tests of turning drafts into outbox rows: ids, parents, threads and labels in the document."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sim.pipeline.content import DemoSpec, OfflineProvider
from sim.pipeline.store import interaction_id, thread_id, to_rows

LABELS = {"niche", "topic", "intent", "sentiment", "language"}
BASE = {"id", "user_id", "kind", "video_id", "author", "text", "created_at"}


def test_documents_carry_labels_parents_and_threads() -> None:
    """Every document keeps the base fields and adds labels; replies and DMs name parent/thread."""
    run = uuid.uuid4()
    spec = DemoSpec(videos=4, comments=200, dms=60, seed=3, niche="pets")
    drafts = [d for b in OfflineProvider().initial(spec, 100) for d in b]
    rows = to_rows("ann", run, datetime.now(UTC), drafts)
    docs = [json.loads(r.payload_json) for r in rows]
    for draft, doc in zip(drafts, docs, strict=True):
        assert BASE | LABELS <= doc.keys() and doc["niche"] == "pets" and doc["language"] == "en"
        if draft.parent_seq is not None:
            assert doc["parent_id"] == str(interaction_id(run, draft.parent_seq))
        else:
            assert "parent_id" not in doc
        if doc["kind"] == "dm":
            assert doc["thread_id"] == str(thread_id(run, draft.extra["thread"]))
            assert doc["direction"] in ("inbound", "outbound")
    assert any("parent_id" in d and d["kind"] == "comment" for d in docs)
    assert any("parent_id" in d and d["kind"] == "dm" for d in docs)
    ids = {d["id"] for d in docs}
    assert all(d["parent_id"] in ids for d in docs if "parent_id" in d)
    assert not ids & {d["thread_id"] for d in docs if d["kind"] == "dm"}
