"""Tests of the LLM call plan: videos with their comments per call, DM threads apart."""

from __future__ import annotations

from sim.pipeline.content import DemoSpec, Draft, OfflineProvider
from sim.pipeline.content.llm.plan import Call, Planner

SPEC = DemoSpec(videos=10, comments=300, dms=120, seed=5, niche="gaming")


def drafts(spec: DemoSpec = SPEC) -> list[Draft]:
    """Every initial offline draft of spec."""
    return [d for batch in OfflineProvider().initial(spec, 500) for d in batch]


def placed(planner: Planner, items: list[Draft]) -> list[Call]:
    """The distinct calls the planner put items into, in order of their first item."""
    calls: list[Call] = []
    for d in items:
        call = planner.add(d)
        if call not in calls:
            calls.append(call)
    return calls


def test_a_posts_call_holds_one_group_of_videos_and_their_comments() -> None:
    """Videos v // 4 share a call with comments on them, at most 7 comments a call."""
    calls = placed(Planner(4, 7, 3), drafts())
    posts = [c for c in calls if c.kind == "posts"]
    for call in posts:
        groups = {v // 4 for v in call.on}
        assert len(groups) == 1 and call.comments <= 7
        assert all(c.video_index in call.on for c in call.drafts if c.kind == "comment")
    written = [v for call in posts for v in call.videos]
    assert sorted(written) == list(range(10))  # each video written by one call only
    assert [len(c.videos) for c in posts if c.videos] == [4, 4, 2]
    assert sum(c.comments for c in posts) == SPEC.comments


def test_dm_calls_hold_whole_threads() -> None:
    """A DM call has at most 3 threads, and a thread's messages are all in one call."""
    calls = [c for c in placed(Planner(4, 7, 3), drafts()) if c.kind == "dms"]
    seen: set[int] = set()
    for call in calls:
        assert 1 <= len(call.threads) <= 3 and not seen & set(call.threads)
        seen |= set(call.threads)
        for messages in call.threads.values():
            assert [m.extra["thread_index"] for m in messages] == list(range(len(messages)))


def test_a_sent_call_takes_no_more_items() -> None:
    """Once sent (or full), a group's next comments go to a new call for that group."""
    planner = Planner(8, 100, 6)
    items = drafts()
    first = planner.add(items[0])
    assert all(planner.add(d) is first for d in items[1:8])  # the group's 8 videos
    first.sent = True
    comment = next(d for d in items if d.kind == "comment" and (d.video_index or 0) < 8)
    later = planner.add(comment)
    assert later is not first and later.kind == "posts" and not later.videos
    assert later.on == {comment.video_index: [comment]}
