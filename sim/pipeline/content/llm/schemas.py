"""What the LLM must answer: pydantic models, sent as strict JSON schemas.

Answers nest like the content does: a posts call returns videos, each with its comments;
a DM call returns threads, each with its messages.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["DmThreads", "LiveText", "Text", "ThreadText", "VideoText", "VideosWithComments"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Text(_Strict):
    """One comment or DM message, by the id it was asked for with."""

    id: int
    text: str


class VideoText(_Strict):
    """A video's title and description, and the comments asked for under it."""

    id: int
    title: str
    description: str
    comments: list[Text]


class VideosWithComments(_Strict):
    """One posts call's answer: the videos asked for, each with its comments."""

    videos: list[VideoText]


class ThreadText(_Strict):
    """The messages asked for in one DM thread, in order."""

    thread: int
    messages: list[Text]


class DmThreads(_Strict):
    """One DM call's answer: the threads asked for, each with its messages."""

    threads: list[ThreadText]


class LiveText(_Strict):
    """A single live comment or DM."""

    text: str
