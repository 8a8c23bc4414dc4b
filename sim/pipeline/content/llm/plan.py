"""Which LLM call writes which item: videos with their comments, DM threads apart.

Like the original service: a posts call writes a group of up to ``llm_videos_per_call``
videos (video ``v`` is in group ``v // llm_videos_per_call``) with comments on them, at
most ``llm_comments_per_call``; the group's later comments go to its next call, which
repeats the videos (already posted) and asks only for comments. A DM call writes the
messages of up to ``llm_threads_per_call`` threads. Items are placed in seq order; a call
takes no more items once it is full or once it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sim.pipeline.content.model import Draft

__all__ = ["Call", "Planner"]


@dataclass(eq=False)
class Call:
    """The items one LLM call writes, and (once it is done) the texts it wrote.

    ``texts`` maps a seq to its text (a video's: (title, description)); it stays empty when
    the call failed, so its items keep the offline text.
    """

    kind: Literal["posts", "dms"]
    drafts: list[Draft] = field(default_factory=list)
    videos: dict[int, Draft] = field(default_factory=dict)  # the videos it writes, by index
    comments: int = 0
    threads: dict[int, list[Draft]] = field(default_factory=dict)  # DM thread → messages
    # video index → the comments on it this call writes (videos it only repeats included)
    on: dict[int, list[Draft]] = field(default_factory=dict)
    full: bool = False
    sent: bool = False
    done: bool = False
    texts: dict[int, Any] = field(default_factory=dict)

    def add(self, d: Draft) -> None:
        self.drafts.append(d)
        if d.kind == "video":
            self.videos[d.seq] = d
            self.on.setdefault(d.seq, [])
        elif d.kind == "comment":
            assert d.video_index is not None
            self.comments += 1
            self.on.setdefault(d.video_index, []).append(d)
        else:
            self.threads.setdefault(d.extra["thread"], []).append(d)


class Planner:
    """Places drafts, in seq order, into the calls that write them."""

    def __init__(self, videos_per_call: int, comments_per_call: int, threads_per_call: int):
        self._videos = videos_per_call
        self._comments = comments_per_call
        self._threads = threads_per_call
        self._posts: dict[int, Call] = {}  # video group → the call taking its items
        self._dms: Call | None = None

    def add(self, d: Draft) -> Call:
        """The call that writes ``d`` (a new one when the current one cannot take it)."""
        if d.kind == "dm":
            call = self._dms
            thread = d.extra["thread"]
            if call is not None and thread not in call.threads:
                if len(call.threads) >= self._threads:
                    call.full = True
            if call is None or call.full or call.sent:
                call = self._dms = Call("dms")
        else:
            video = d.seq if d.kind == "video" else d.video_index
            assert video is not None
            group = video // self._videos
            call = self._posts.get(group)
            if call is None or call.full or call.sent:
                call = self._posts[group] = Call("posts")
        call.add(d)
        if call.kind == "posts" and call.comments >= self._comments:
            call.full = True
        return call
