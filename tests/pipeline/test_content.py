"""Tests of the Faker content generator: counts, order, determinism and realism of the drafts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from sim.pipeline.content import ContentProvider, DemoSpec, Draft, FakerProvider

SPEC = DemoSpec(videos=12, comments=400, dms=150, seed=42)
DAY = 86_400.0


@pytest.fixture(scope="module")
def provider() -> FakerProvider:
    """One provider for the module: building Faker takes a few tens of milliseconds."""
    return FakerProvider()


def everything(provider: ContentProvider, spec: DemoSpec, batch_size: int = 64) -> list[Draft]:
    """All initial drafts of spec, flattened."""
    return [draft for batch in provider.initial(spec, batch_size) for draft in batch]


def canonical(drafts: list[Draft]) -> str:
    """A byte-exact, order-preserving rendering of drafts."""
    return json.dumps([vars(d) for d in drafts], ensure_ascii=False, sort_keys=True)


def test_is_a_content_provider(provider: FakerProvider) -> None:
    """FakerProvider satisfies the ContentProvider protocol."""
    typed: ContentProvider = provider
    assert typed.name == "faker"


def test_counts_and_seq_order(provider: FakerProvider) -> None:
    """All drafts come out once, seq 0..total-1, videos first, then comments and DMs mixed."""
    drafts = everything(provider, SPEC)
    assert [d.seq for d in drafts] == list(range(SPEC.videos + SPEC.comments + SPEC.dms))
    kinds = [d.kind for d in drafts]
    assert kinds[: SPEC.videos] == ["video"] * SPEC.videos
    assert Counter(kinds) == {"video": 12, "comment": 400, "dm": 150}
    rest = kinds[SPEC.videos :]
    assert "dm" in rest[:20] and "comment" in rest[-20:]  # interleaved, not one block each


def test_batching(provider: FakerProvider) -> None:
    """Batches hold at most batch_size drafts and the content does not depend on the size."""
    spec = DemoSpec(videos=3, comments=20, dms=10, seed=5)
    for size in (1, 7, 33, 1000):
        batches = list(provider.initial(spec, size))
        assert all(0 < len(b) <= size for b in batches)
        assert all(len(b) == size for b in batches[:-1])
    assert canonical(everything(provider, spec, 1)) == canonical(everything(provider, spec, 1000))
    with pytest.raises(ValueError):
        provider.initial(spec, 0)


def test_same_seed_same_drafts(provider: FakerProvider) -> None:
    """The same spec gives identical drafts, also from a fresh provider after other work."""
    first = canonical(everything(provider, SPEC))
    provider.live(SPEC, 3)
    everything(provider, DemoSpec(videos=2, comments=5, dms=5, seed=9))
    assert canonical(everything(FakerProvider(), SPEC)) == first
    assert canonical(everything(provider, SPEC)) == first


def test_same_seed_same_drafts_across_processes(provider: FakerProvider) -> None:
    """Another interpreter, with another string-hash seed, produces byte-identical drafts."""
    spec = DemoSpec(videos=4, comments=30, dms=12, seed=77)
    code = (
        "import json, sys\n"
        "from sim.pipeline.content import DemoSpec, FakerProvider\n"
        "p = FakerProvider()\n"
        "spec = DemoSpec(videos=4, comments=30, dms=12, seed=77)\n"
        "drafts = [vars(d) for b in p.initial(spec, 64) for d in b]\n"
        "drafts += [vars(p.live(spec, n)) for n in range(10)]\n"
        "sys.stdout.write(json.dumps(drafts, ensure_ascii=True, sort_keys=True))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    here = [vars(d) for d in everything(provider, spec)]
    here += [vars(provider.live(spec, n)) for n in range(10)]
    assert out == json.dumps(here, ensure_ascii=True, sort_keys=True)


def test_different_seeds_differ(provider: FakerProvider) -> None:
    """Different seeds give different texts, authors and ages."""
    a = everything(provider, SPEC)
    b = everything(provider, DemoSpec(SPEC.videos, SPEC.comments, SPEC.dms, seed=43))
    assert sum(x.text == y.text for x, y in zip(a, b, strict=True)) < len(a) // 20
    assert {d.author["handle"] for d in a} != {d.author["handle"] for d in b}
    assert [d.age_s for d in a] != [d.age_s for d in b]


def test_videos_are_realistic(provider: FakerProvider) -> None:
    """Videos have titles, varied descriptions, durations, views and ages over ~4 weeks."""
    videos = [d for d in everything(provider, SPEC) if d.kind == "video"]
    assert len({d.author["handle"] for d in videos}) == 1
    assert all(d.video_index is None and d.extra["title"] and d.text for d in videos)
    assert len({len(d.text) for d in videos}) > len(videos) // 2
    assert all(d.extra["duration_s"] > 0 and d.extra["views"] >= 0 for d in videos)
    ages = [d.age_s for d in videos]
    assert ages == sorted(ages, reverse=True)
    assert 0 < min(ages) and max(ages) <= 28 * DAY and max(ages) - min(ages) > 14 * DAY


def test_comments_follow_their_video_and_spread(provider: FakerProvider) -> None:
    """Each comment is younger than its video; all videos get some, unevenly; fans recur."""
    drafts = everything(provider, SPEC)
    video_age = {d.seq: d.age_s for d in drafts if d.kind == "video"}
    comments = [d for d in drafts if d.kind == "comment"]
    for c in comments:
        assert c.video_index is not None and 0 <= c.video_index < SPEC.videos
        assert 0 <= c.age_s < video_age[c.video_index]
        assert c.extra["likes"] >= 0
    per_video = Counter(c.video_index for c in comments)
    assert len(per_video) >= SPEC.videos // 2
    assert max(per_video.values()) >= 2 * (len(comments) / SPEC.videos)  # some are popular
    authors = Counter(c.author["handle"] for c in comments)
    assert len(authors) > 50 and authors.most_common(1)[0][1] >= 5
    assert len({len(c.text) for c in comments}) > 50
    assert sum(any(ord(ch) > 0x2000 for ch in c.text) for c in comments) > len(comments) // 10


def test_replies_address_earlier_commenters(provider: FakerProvider) -> None:
    """reply_to names an earlier, older commenter on the same video, and the text addresses it."""
    comments = [d for d in everything(provider, SPEC) if d.kind == "comment"]
    replies = [c for c in comments if "reply_to" in c.extra]
    assert replies
    for reply in replies:
        handle = reply.extra["reply_to"]
        assert reply.text.startswith(handle) and handle != reply.author["handle"]
        parents = [
            c
            for c in comments
            if c.seq < reply.seq
            and c.video_index == reply.video_index
            and c.author["handle"] == handle
        ]
        assert any(p.age_s > reply.age_s for p in parents)


def test_dm_threads(provider: FakerProvider) -> None:
    """DMs form 1-5 message threads, in time order, each from one distinct fan, over ~2 weeks."""
    dms = [d for d in everything(provider, SPEC) if d.kind == "dm"]
    threads: dict[int, list[Draft]] = defaultdict(list)
    for d in dms:
        assert d.video_index is None
        threads[d.extra["thread"]].append(d)
    assert len(threads) > 10
    lengths = set()
    for messages in threads.values():
        lengths.add(len(messages))
        assert [m.extra["thread_index"] for m in messages] == list(range(len(messages)))
        assert len({m.author["handle"] for m in messages}) == 1
        ages = [m.age_s for m in messages]
        assert all(a > b >= 0 for a, b in pairwise(ages))
    assert lengths <= {1, 2, 3, 4, 5} and len(lengths) >= 3
    fans = [messages[0].author["handle"] for messages in threads.values()]
    assert len(set(fans)) == len(fans)
    assert max(d.age_s for d in dms) <= 14 * DAY


def test_ages_are_spread(provider: FakerProvider) -> None:
    """Timestamps are spread out, not bunched into one second."""
    drafts = everything(provider, SPEC)
    assert all(d.age_s >= 0 for d in drafts)
    assert len({int(d.age_s) for d in drafts}) > len(drafts) * 0.9
    comment_ages = [d.age_s for d in drafts if d.kind == "comment"]
    assert max(comment_ages) - min(comment_ages) > 7 * DAY


def test_live_is_deterministic_and_valid(provider: FakerProvider) -> None:
    """live(spec, n) depends on (seed, n) only and yields fresh comments or DMs."""
    live = [provider.live(SPEC, n) for n in range(300)]
    again = FakerProvider()
    assert canonical([again.live(SPEC, n) for n in reversed(range(300))][::-1]) == canonical(live)
    assert canonical([provider.live(DemoSpec(12, 0, 0, seed=42), n) for n in range(300)]) != (
        canonical([provider.live(DemoSpec(12, 0, 0, seed=41), n) for n in range(300)])
    )
    assert {d.kind for d in live} == {"comment", "dm"}
    for d in live:
        assert d.seq == -1 and d.age_s == 0.0 and d.text and d.author["handle"].startswith("@")
        if d.kind == "comment":
            assert d.video_index is not None and 0 <= d.video_index < SPEC.videos
        else:
            assert d.video_index is None and d.extra["thread"] >= SPEC.dms
    no_videos = DemoSpec(videos=0, comments=0, dms=5, seed=1)
    assert {provider.live(no_videos, n).kind for n in range(50)} == {"dm"}
    with pytest.raises(ValueError):
        provider.live(SPEC, -1)


def test_comments_need_videos(provider: FakerProvider) -> None:
    """Comments without videos are rejected up front; DMs alone are fine."""
    with pytest.raises(ValueError):
        provider.initial(DemoSpec(videos=0, comments=1, dms=0, seed=1), 10)
    with pytest.raises(ValueError):
        provider.live(DemoSpec(videos=0, comments=3, dms=0, seed=1), 0)
    only_dms = everything(provider, DemoSpec(videos=0, comments=0, dms=7, seed=1))
    assert [d.kind for d in only_dms] == ["dm"] * 7
    assert everything(provider, DemoSpec(videos=0, comments=0, dms=0, seed=1)) == []


def test_extra_is_json_serialisable(provider: FakerProvider) -> None:
    """Every extra (and the whole draft) survives a JSON round trip unchanged."""
    drafts = everything(provider, SPEC) + [provider.live(SPEC, n) for n in range(50)]
    for d in drafts:
        assert json.loads(json.dumps(d.extra)) == d.extra
        assert json.loads(json.dumps(vars(d))) == vars(d)
