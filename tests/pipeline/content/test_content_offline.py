"""Tests of the offline provider: counts, order, determinism, niches, labels and coherence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from sim.pipeline.content import (
    COMMENT_INTENTS,
    NICHE_KEYS,
    NICHES,
    ContentProvider,
    DemoSpec,
    Draft,
    OfflineProvider,
    expected_sentiments,
    niche_of,
)
from sim.pipeline.content.checks import measure, on_topic
from sim.pipeline.content.dms import SCRIPTS

SPEC = DemoSpec(videos=12, comments=400, dms=150, seed=42)
DAY = 86_400.0
LABELS = ("niche", "topic", "intent", "sentiment", "language")


@pytest.fixture(scope="module")
def provider() -> OfflineProvider:
    """One provider for the module: building the name pools and grammars takes a moment."""
    return OfflineProvider()


def everything(provider: OfflineProvider, spec: DemoSpec, batch_size: int = 64) -> list[Draft]:
    """All initial drafts of spec, flattened."""
    return [draft for batch in provider.initial(spec, batch_size) for draft in batch]


def canonical(drafts: list[Draft]) -> str:
    """A byte-exact, order-preserving rendering of drafts."""
    return json.dumps([vars(d) for d in drafts], ensure_ascii=False, sort_keys=True)


def test_is_a_content_provider(provider: OfflineProvider) -> None:
    """OfflineProvider satisfies the (async) ContentProvider protocol."""
    typed: ContentProvider = provider
    assert typed.name == "offline"


async def test_async_batches_skip_and_live(provider: OfflineProvider) -> None:
    """initial_batches yields what initial does from skip on; live_item is live."""
    spec = DemoSpec(videos=3, comments=40, dms=20, seed=5)
    got = [d async for batch in provider.initial_batches(spec, 16, skip=21) for d in batch]
    assert canonical(got) == canonical(everything(provider, spec)[21:])
    assert canonical([await provider.live_item(spec, 4)]) == canonical([provider.live(spec, 4)])


async def test_async_batches_not_held_while_paused(provider: OfflineProvider) -> None:
    """Paused after a batch, the generator keeps no drafts: they are its consumer's alone."""
    spec = DemoSpec(videos=3, comments=40, dms=20, seed=5)
    batches = provider.initial_batches(spec, 16, skip=5)
    for _ in range(2):
        batch = await anext(batches)
        assert batch
        frame = getattr(batches, "ag_frame", None)  # a native async generator's
        assert frame is not None
        held = [v for v in frame.f_locals.values() if isinstance(v, list) and v]
        assert not [v for v in held if isinstance(v[0], Draft)]
    await batches.aclose()


def test_counts_and_seq_order(provider: OfflineProvider) -> None:
    """All drafts come out once, seq 0..total-1, videos first, then comments and DMs mixed."""
    drafts = everything(provider, SPEC)
    assert [d.seq for d in drafts] == list(range(SPEC.total))
    kinds = [d.kind for d in drafts]
    assert kinds[: SPEC.videos] == ["video"] * SPEC.videos
    assert Counter(kinds) == {"video": 12, "comment": 400, "dm": 150}
    rest = kinds[SPEC.videos :]
    assert "dm" in rest[:20] and "comment" in rest[-20:]  # interleaved, not one block each


def test_batching(provider: OfflineProvider) -> None:
    """Batches hold at most batch_size drafts and the content does not depend on the size."""
    spec = DemoSpec(videos=3, comments=20, dms=10, seed=5)
    for size in (1, 7, 33, 1000):
        batches = list(provider.initial(spec, size))
        assert all(0 < len(b) <= size for b in batches)
        assert all(len(b) == size for b in batches[:-1])
    assert canonical(everything(provider, spec, 1)) == canonical(everything(provider, spec, 1000))
    with pytest.raises(ValueError):
        provider.initial(spec, 0)


def test_same_seed_same_drafts(provider: OfflineProvider) -> None:
    """The same spec gives identical drafts, also from a fresh provider after other work."""
    first = canonical(everything(provider, SPEC))
    provider.live(SPEC, 3)
    everything(provider, DemoSpec(videos=2, comments=5, dms=5, seed=9))
    assert canonical(everything(OfflineProvider(), SPEC)) == first
    assert canonical(everything(provider, SPEC)) == first


def test_same_seed_same_drafts_across_processes(provider: OfflineProvider) -> None:
    """Another interpreter, with another string-hash seed, produces byte-identical drafts."""
    spec = DemoSpec(videos=4, comments=30, dms=12, seed=77)
    code = (
        "import json, sys\n"
        "from sim.pipeline.content import DemoSpec, OfflineProvider\n"
        "p = OfflineProvider()\n"
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


def test_different_seeds_differ(provider: OfflineProvider) -> None:
    """Different seeds give different texts, authors and ages."""
    a = everything(provider, SPEC)
    b = everything(provider, DemoSpec(SPEC.videos, SPEC.comments, SPEC.dms, seed=43))
    assert sum(x.text == y.text for x, y in zip(a, b, strict=True)) < len(a) // 20
    assert {d.author["handle"] for d in a} != {d.author["handle"] for d in b}
    assert [d.age_s for d in a] != [d.age_s for d in b]


def test_niche_from_the_seed_or_the_spec(provider: OfflineProvider) -> None:
    """The seed picks one of >= 10 niches (all reachable); a given niche wins; unknown fails."""
    assert len(NICHES) >= 10
    assert {niche_of(DemoSpec(1, 0, 0, seed)).key for seed in range(300)} == set(NICHE_KEYS)
    assert niche_of(DemoSpec(1, 0, 0, 5)) == niche_of(DemoSpec(1, 0, 0, 5))
    drafts = everything(provider, DemoSpec(3, 30, 10, seed=5, niche="gaming"))
    assert {d.extra["niche"] for d in drafts} == {"gaming"}
    with pytest.raises(ValueError):
        provider.initial(DemoSpec(1, 0, 0, 1, niche="knitting"), 10)


@pytest.mark.parametrize("niche", NICHE_KEYS)
def test_every_niche_line_names_the_topic(niche: str) -> None:
    """Each niche's questions, tips, gripes and jokes name the video's topic ({t})."""
    n = NICHES[niche]
    assert len(n.topics) >= 8 and len(n.hashtags) >= 5 and len(n.titles) >= 5
    for line in (*n.asks, *n.tips, *n.gripes, *n.jokes):
        assert "{t}" in line, line


def test_videos_are_niche_specific(provider: OfflineProvider) -> None:
    """Videos have titles naming their topic, descriptions, hashtags, durations, views, ages."""
    spec = DemoSpec(videos=12, comments=0, dms=0, seed=42, niche="cooking")
    videos = everything(provider, spec)
    topics = {t.name for t in NICHES["cooking"].topics}
    for v in videos:
        assert v.author["handle"] == "@you" and v.video_index is None and v.text
        assert v.extra["topic"] in topics and v.extra["topic"].lower() in v.extra["title"].lower()
        assert v.extra["hashtags"] and all("#" + tag in v.text for tag in v.extra["hashtags"])
        assert v.extra["duration_s"] > 0 and v.extra["views"] >= 0
    assert len({v.extra["title"] for v in videos}) > 8
    ages = [d.age_s for d in videos]
    assert ages == sorted(ages, reverse=True)
    assert 0 < min(ages) and max(ages) <= 28 * DAY and max(ages) - min(ages) > 14 * DAY


def test_comments_follow_their_video_and_spread(provider: OfflineProvider) -> None:
    """Each comment is younger than its video; all videos get some, unevenly; fans recur."""
    drafts = everything(provider, SPEC)
    comments = [d for d in drafts if d.kind == "comment"]
    assert measure(drafts).order_violations == []
    per_video = Counter(c.video_index for c in comments)
    assert len(per_video) >= SPEC.videos // 2
    assert max(per_video.values()) >= 2 * (len(comments) / SPEC.videos)  # some are popular
    authors = Counter(c.author["handle"] for c in comments)
    assert len(authors) > 50 and authors.most_common(1)[0][1] >= 5
    assert sum(any(ord(ch) > 0x2000 for ch in c.text) for c in comments) > len(comments) // 10
    assert all(c.extra["likes"] >= 0 for c in comments)


def test_comments_are_about_their_video(provider: OfflineProvider) -> None:
    """Every comment names its video's topic, and its labels match that video."""
    drafts = everything(provider, SPEC)
    for c in (d for d in drafts if d.kind == "comment"):
        assert c.video_index is not None
        video = drafts[c.video_index]
        assert c.extra["topic"] == video.extra["topic"] and c.extra["niche"] == video.extra["niche"]
        assert on_topic(c.text, c.extra["niche"], c.extra["topic"]), c.text


def test_replies_answer_earlier_commenters(provider: OfflineProvider) -> None:
    """A reply names an earlier, older comment's author on the same video and starts with it."""
    drafts = everything(provider, SPEC)
    replies = [d for d in drafts if d.kind == "comment" and d.parent_seq is not None]
    assert len(replies) > 20
    for reply in replies:
        assert reply.parent_seq is not None
        parent = drafts[reply.parent_seq]
        assert parent.kind == "comment" and parent.video_index == reply.video_index
        assert reply.extra["reply_to"] == parent.author["handle"] != reply.author["handle"]
        assert reply.text.startswith(parent.author["handle"]) and parent.age_s > reply.age_s
        assert reply.extra["intent"] == "reply"


def test_dm_threads_follow_their_script(provider: OfflineProvider) -> None:
    """DM threads have a purpose; messages follow its script, the account replies, in order."""
    drafts = everything(provider, SPEC)
    dms = [d for d in drafts if d.kind == "dm"]
    threads: dict[int, list[Draft]] = defaultdict(list)
    for d in dms:
        assert d.video_index is None
        threads[d.extra["thread"]].append(d)
    assert len(threads) > 10 and measure(drafts).order_violations == []
    purposes: Counter[str] = Counter()
    for messages in threads.values():
        purpose = messages[0].extra["intent"]
        purposes[purpose] += 1
        script = SCRIPTS[purpose]
        assert len(messages) <= len(script)
        fans = set()
        for k, m in enumerate(messages):
            direction, sentiment, _ = script[k]
            assert m.extra["intent"] == purpose and m.extra["sentiment"] == sentiment
            assert m.extra["direction"] == ("outbound" if direction == "out" else "inbound")
            if direction == "out":
                assert m.author["handle"] == "@you"
            else:
                fans.add(m.author["handle"])
        assert len(fans) == 1
        assert all(a.age_s > b.age_s >= 0 for a, b in pairwise(messages))
    assert set(purposes) == set(SCRIPTS)
    assert any(m.extra["direction"] == "outbound" for m in dms)
    assert not any(m.extra["direction"] == "outbound" for m in dms if m.extra["intent"] == "spam")
    assert max(d.age_s for d in dms) <= 14 * DAY


def test_labels_on_every_item(provider: OfflineProvider) -> None:
    """Every item, initial and live, carries the labels, with known values."""
    drafts = everything(provider, SPEC) + [provider.live(SPEC, n) for n in range(100)]
    for d in drafts:
        assert all(d.extra.get(k) for k in LABELS), d
        assert d.extra["sentiment"] in ("positive", "neutral", "negative")
        assert d.extra["language"] == "en"
        if d.kind == "comment":
            assert d.extra["intent"] in COMMENT_INTENTS
        if d.kind == "dm":
            assert d.extra["intent"] in SCRIPTS


@pytest.mark.parametrize("niche", ["cooking", "tech", "comedy"])
def test_realism_at_ten_thousand_comments(provider: OfflineProvider, niche: str) -> None:
    """10,000 comments: < 1% repeated, all on topic, mix and sentiment within 3 points."""
    spec = DemoSpec(videos=8, comments=10_000, dms=0, seed=11, niche=niche)
    r = measure(everything(provider, spec, 1000))
    assert r.repeated_share < 0.01
    assert r.on_topic_share == 1.0
    assert r.order_violations == []
    for intent, share in COMMENT_INTENTS.items():
        assert abs(r.intents.get(intent, 0.0) - share) <= 0.03, intent
    for sentiment, share in expected_sentiments().items():
        assert abs(r.sentiments.get(sentiment, 0.0) - share) <= 0.03, sentiment


def test_live_is_deterministic_and_coherent(provider: OfflineProvider) -> None:
    """live(spec, n) depends on (spec, n) only, and live items follow the same rules."""
    live = [provider.live(SPEC, n) for n in range(300)]
    again = OfflineProvider()
    assert canonical([again.live(SPEC, n) for n in reversed(range(300))][::-1]) == canonical(live)
    assert canonical([provider.live(DemoSpec(12, 0, 0, seed=42), n) for n in range(300)]) != (
        canonical([provider.live(DemoSpec(12, 0, 0, seed=41), n) for n in range(300)])
    )
    assert {d.kind for d in live} == {"comment", "dm"}
    initial = everything(provider, SPEC)
    for n, d in enumerate(live):
        assert d.seq == SPEC.total + n and d.age_s == 0.0 and d.text
        if d.kind == "comment":
            assert d.video_index is not None and 0 <= d.video_index < SPEC.videos
            video = initial[d.video_index]
            assert d.extra["topic"] == video.extra["topic"]
            assert on_topic(d.text, d.extra["niche"], d.extra["topic"])
        else:
            assert d.video_index is None and d.extra["thread"] >= SPEC.dms
    assert measure(initial + live).order_violations == []
    assert any(d.parent_seq is not None for d in live if d.kind == "comment")
    assert any(d.parent_seq is not None for d in live if d.kind == "dm")
    no_videos = DemoSpec(videos=0, comments=0, dms=5, seed=1)
    assert {provider.live(no_videos, n).kind for n in range(50)} == {"dm"}
    with pytest.raises(ValueError):
        provider.live(SPEC, -1)


def test_comments_need_videos(provider: OfflineProvider) -> None:
    """Comments without videos are rejected up front; DMs alone are fine."""
    with pytest.raises(ValueError):
        provider.initial(DemoSpec(videos=0, comments=1, dms=0, seed=1), 10)
    with pytest.raises(ValueError):
        provider.live(DemoSpec(videos=0, comments=3, dms=0, seed=1), 0)
    only_dms = everything(provider, DemoSpec(videos=0, comments=0, dms=7, seed=1))
    assert [d.kind for d in only_dms] == ["dm"] * 7
    assert everything(provider, DemoSpec(videos=0, comments=0, dms=0, seed=1)) == []


def test_extra_is_json_serialisable(provider: OfflineProvider) -> None:
    """Every extra (and the whole draft) survives a JSON round trip unchanged."""
    drafts = everything(provider, SPEC) + [provider.live(SPEC, n) for n in range(50)]
    for d in drafts:
        assert json.loads(json.dumps(d.extra)) == d.extra
        assert json.loads(json.dumps(vars(d))) == vars(d)
