"""What the LLM must answer: pydantic models, sent as strict JSON schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["DmMessages", "LiveText", "Text", "VideoText", "VideosAndComments"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoText(_Strict):
    id: int
    title: str
    description: str


class Text(_Strict):
    id: int
    text: str


class VideosAndComments(_Strict):
    """One call's answer: the videos asked for and the comments on them."""

    videos: list[VideoText]
    comments: list[Text]


class DmMessages(_Strict):
    """One call's answer: the messages of a few DM threads."""

    messages: list[Text]


class LiveText(_Strict):
    """A single live comment or DM."""

    text: str
