"""LLM-written content: an OpenAI-compatible Chat Completions client and the provider."""

from sim.pipeline.content.llm.client import ChatClient, strict_schema
from sim.pipeline.content.llm.provider import LLMProvider, prompt

__all__ = ["ChatClient", "LLMProvider", "prompt", "strict_schema"]
