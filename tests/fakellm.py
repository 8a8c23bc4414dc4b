"""A local OpenAI-compatible Chat Completions server for tests (real HTTP on 127.0.0.1).

Each request takes the next mode from ``FakeLLM.script`` (then ``FakeLLM.default``):
``ok`` answers valid JSON for the items in the prompt, ``invalid`` answers text that is
not JSON, ``length`` a truncated answer, ``refusal`` a refusal, ``429`` and ``500`` those
statuses (429 with ``Retry-After``), ``hang`` never answers.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

_ITEMS = re.compile(r"(?:Videos|Threads|Item):\n(.*)\Z", re.DOTALL)


@dataclass
class FakeLLM:
    default: str = "ok"
    script: list[str] = field(default_factory=list)
    retry_after: str = "1"
    #: (monotonic time, JSON body, headers) of every request
    requests: list[tuple[float, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def next_mode(self) -> str:
        return self.script.pop(0) if self.script else self.default


def _text(item: dict[str, Any], topic: str) -> str:
    reply = f"{item['reply_to']} " if item.get("reply_to") else ""
    return f"{reply}Fake LLM text about the {topic} (item {item.get('id', 'live')})"


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    """Valid content for the schema the request names, from the items in its prompt."""
    name = body["response_format"]["json_schema"]["name"]
    found = _ITEMS.search(body["messages"][-1]["content"])
    assert found, "no items in the prompt"
    items = json.loads(found[1])
    if name == "live_item":
        return {"text": _text(items, items["topic"])}
    if name == "dm_threads":
        return {
            "threads": [
                {
                    "thread": t["thread"],
                    "messages": [
                        {"id": m["id"], "text": _text(m, t["topic"])} for m in t["messages"]
                    ],
                }
                for t in items
            ]
        }
    return {
        "videos": [
            {
                "id": v["id"],
                "title": v["title"] if v["posted"] else f"Fake {v['topic']} title",
                "description": "" if v["posted"] else "Fake description.",
                "comments": [{"id": c["id"], "text": _text(c, v["topic"])} for c in v["comments"]],
            }
            for v in items
        ]
    }


def _completion(content: str | None, finish: str = "stop", refusal: str | None = None) -> Any:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


def fake_llm_app(fake: FakeLLM) -> QuartTrio:
    """The app serving ``POST /v1/chat/completions`` as ``fake`` says."""
    app = QuartTrio("fakellm")

    @app.post("/v1/chat/completions")
    async def chat() -> Any:
        body = await request.get_json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        fake.requests.append((time.monotonic(), body, headers))
        mode = fake.next_mode()
        if mode == "hang":
            await trio.sleep_forever()
        if mode == "429":
            return Response("slow down", 429, {"retry-after": fake.retry_after})
        if mode == "500":
            return Response("boom", 500)
        if mode == "invalid":
            return _completion("this is not JSON {")
        if mode == "length":
            return _completion('{"videos": [{"id": 0, "comments": [', finish="length")
        if mode == "refusal":
            return _completion(None, refusal="I can't help with that.")
        return _completion(json.dumps(_answer(body)))

    return app
