"""Reading a chat-completions reply: leaving out a leading reasoning block, and a reply
sent whole where a stream was asked for.

Reasoning models (Qwen3, DeepSeek-R1, QwQ...) write their reasoning first, between
``<think>`` and ``</think>``. A server with a reasoning parser moves it out of
``content`` (into ``reasoning_content``, which we never read); vLLM without
``--reasoning-parser``, llama.cpp's server with ``--reasoning-format none`` and older
Ollama leave it in, and it would reach the customer and the history.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botkit.backends.protocol import CUT_AT_LIMIT
from botkit.backends.stream import GenerationStream

__all__ = ["ReplyStream", "ThinkFilter", "WholeReply", "report_end", "whole_reply"]

log = logging.getLogger("botkit.backends.openai")

_OPEN = "<think>"
_CLOSE = "</think>"
# Whitespace before the tag is allowed; more text than this before deciding means the
# reply does not start with a reasoning block.
_LEAD_CHARS = 64


# ``OpenAIBackend.generate``'s stream: its ``finish_reason`` is the server's once the
# reply has ended ("stop", "length" when cut at the token limit, ...); closing it closes
# the HTTP response, so the server stops generating. The name stays for callers of
# ``openai_compat.ReplyStream``.
ReplyStream = GenerationStream


class ThinkFilter:
    """Drops a ``<think>…</think>`` block at the start of a streamed reply.

    Feed each content delta to ``feed`` and send what it returns. Until the reply is
    known to start otherwise, at most a few characters are held back; inside the block
    only the last few are kept (to find a closing tag split across deltas), so memory
    stays bounded however long the reasoning is.
    """

    def __init__(self) -> None:
        self._state = "start"  # "start", "inside", "after" (stripping leading space), "pass"
        self._held = ""
        self.had_reasoning = False

    def feed(self, delta: str) -> str:
        """The part of ``delta`` (with what was held back) that belongs to the reply."""
        if self._state == "pass":
            return delta
        held = self._held + delta
        self._held = ""
        if self._state == "start":
            lead = held.lstrip()
            if lead.startswith(_OPEN):
                self._state, self.had_reasoning = "inside", True
                held = lead[len(_OPEN) :]
            elif _OPEN.startswith(lead) and len(held) <= _LEAD_CHARS:
                self._held = held  # "", "  <th": not decided yet
                return ""
            else:
                self._state = "pass"
                return held
        if self._state == "inside":
            end = held.find(_CLOSE)
            if end < 0:
                self._held = held[-(len(_CLOSE) - 1) :]
                return ""
            self._state, held = "after", held[end + len(_CLOSE) :]
        # "after": the blank lines between the block and the answer are not the answer.
        held = held.lstrip()
        if held:
            self._state = "pass"
        return held

    def finish(self) -> str:
        """What is still held back once the reply ended (a short reply such as "<")."""
        held, self._held = self._held, ""
        return held if self._state == "start" else ""

    @property
    def in_reasoning(self) -> bool:
        """Whether the reply ended (or is) inside an unclosed reasoning block."""
        return self._state == "inside"


@dataclass(frozen=True, slots=True)
class WholeReply:
    """A reply a server sent as one JSON body instead of a stream."""

    content: str
    finish_reason: str | None


def whole_reply(raw: bytes) -> WholeReply:
    """Read a ``chat.completion`` body (a server or proxy that ignores ``stream``).

    Raises:
        ValueError: it is not JSON, or not a chat completion.
    """
    body: Any = json.loads(raw)
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError(f"a JSON body without choices: {raw[:80]!r}")
    message = choices[0].get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    finish = choices[0].get("finish_reason")
    return WholeReply(str(content or ""), str(finish) if finish is not None else None)


def report_end(
    where: str, limit: int, finish: str, *, sent: bool, reasoned: bool, unclosed: bool
) -> None:
    """Warn about a reply that is not what the customer should have had: cut at the
    token limit (``limit``), spent on reasoning, or all reasoning."""
    if finish == CUT_AT_LIMIT and not sent and (reasoned or unclosed):
        log.warning(
            "openai: the model at %s spent all %d reply tokens reasoning and wrote no "
            "reply; raise [backend.openai] max_new_tokens, or turn the model's thinking off",
            where,
            limit,
        )
    elif finish == CUT_AT_LIMIT:
        log.warning(
            "openai: the reply from %s was cut at max_new_tokens (%d tokens); raise "
            "[backend.openai] max_new_tokens for longer replies",
            where,
            limit,
        )
    elif unclosed or (reasoned and not sent):
        log.warning(
            "openai: the reply from %s was all reasoning (%s); none of it is sent",
            where,
            "a <think> block that never closed" if unclosed else "no text after it",
        )
