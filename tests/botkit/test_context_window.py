"""Fitting the history into a bounded backend's context (``botkit.pipeline.context_window``)
and what the generation step does with a message that cannot fit at all. The engine end
to end is in tests/engine/test_engine_context.py."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from test_pipeline import make_ctx, reply_text

from botkit.backends.echo import EchoBackend
from botkit.backends.protocol import ChatMessage, GenerationRequest, PromptLimits
from botkit.config import settings_from_mapping
from botkit.pipeline import Pipeline
from botkit.pipeline.context_window import fit_history
from botkit.pipeline.generation import GenerationHandler
from botkit.pipeline.middleware import LoadConversationMiddleware

SETTINGS = settings_from_mapping({"bot": {"system_prompt": "SYS"}}, environ={})


class BoundedEcho(EchoBackend):
    """Echo with a context of ``limit`` prompt tokens: a token per character, plus one
    per message for the template."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit
        self.requests: list[GenerationRequest] = []

    def max_prompt_tokens(self) -> int | None:
        return self.limit

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return sum(len(m.content) + 1 for m in messages)

    def check_prompt_room(self, system_prompt: str) -> None:
        pass

    def generate(self, request: GenerationRequest):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return super().generate(request)


def turns(n: int) -> list[ChatMessage]:
    return [ChatMessage("user" if i % 2 == 0 else "assistant", f"turn{i}") for i in range(n)]


def test_fit_keeps_the_newest_turns_that_fit() -> None:
    history = turns(6)  # 6 tokens each
    current = ChatMessage("user", "now")  # 4
    assert isinstance(BoundedEcho(0), PromptLimits)
    assert fit_history(EchoBackend(), "SYS", history, current) == history  # no bound
    assert fit_history(BoundedEcho(None), "SYS", history, current) == history  # not started
    assert fit_history(BoundedEcho(44), "SYS", history, current) == history  # 4+36+4
    for limit, kept in [(43, 5), (20, 2), (14, 1), (13, 0), (8, 0)]:
        assert fit_history(BoundedEcho(limit), "SYS", history, current) == history[6 - kept :]
    assert fit_history(BoundedEcho(7), "SYS", history, current) is None
    assert fit_history(BoundedEcho(4), "", [], current) == []


async def test_the_generation_step_fits_again_after_later_instructions() -> None:
    backend = BoundedEcho(29)
    ctx = make_ctx("now", SETTINGS)
    ctx.backend = backend
    ctx.history = turns(3)  # fitted for "SYS" alone: 4 + 18 + 4 = 26
    ctx.instructions.append("passages")  # a handler added these since: 10 tokens more
    await Pipeline(fallback=GenerationHandler(SETTINGS.bot)).run(ctx)
    # The history's last user turn and the message are one turn (generation.merge_turns).
    assert await reply_text(ctx) == "echo: turn2\n\nnow"
    sent = backend.requests[0].messages
    assert [m.content for m in sent] == ["SYS\n\npassages", "turn2\n\nnow"]


async def test_a_message_the_context_cannot_take_gets_the_too_long_reply() -> None:
    backend = BoundedEcho(24)  # "SYS" + an empty message: 5, so 19 characters fit
    ctx = make_ctx("x" * 38, SETTINGS)
    ctx.backend = backend
    ctx.history = turns(2)
    await Pipeline(fallback=GenerationHandler(SETTINGS.bot)).run(ctx)
    assert ctx.reply is not None and ctx.reply.source == "too_long"
    expected = SETTINGS.bot.too_long_reply.replace("{length}", "38").replace("{limit}", "19")
    assert await reply_text(ctx) == expected
    assert backend.requests == []


async def test_a_system_prompt_that_fills_the_context_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = make_ctx("hi", SETTINGS)
    ctx.backend = BoundedEcho(4)
    await Pipeline(fallback=GenerationHandler(SETTINGS.bot)).run(ctx)
    assert ctx.reply is not None and ctx.reply.source == "fallback"
    assert "system_prompt" in caplog.text


async def test_a_history_fitted_at_load_is_not_counted_again_without_new_instructions() -> None:
    # Counting renders the chat template and tokenizes the prompt (~1 ms per 1,000
    # tokens with SmolLM2's tokenizer): once per message when nothing was added.
    class Counting(BoundedEcho):
        counts = 0

        def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
            Counting.counts += 1
            return super().count_prompt_tokens(messages)

    backend = Counting(29)
    ctx = make_ctx("now", SETTINGS)
    ctx.backend = backend
    ctx.history = LoadConversationMiddleware(SETTINGS.bot).fit(ctx, turns(5))
    loaded = Counting.counts
    assert [m.content for m in ctx.history] == ["turn2", "turn3", "turn4"] and loaded > 0
    await Pipeline(fallback=GenerationHandler(SETTINGS.bot)).run(ctx)
    assert Counting.counts == loaded
    assert [m.content for m in backend.requests[0].messages] == [
        "SYS", "turn2", "turn3", "turn4\n\nnow"  # one user turn (generation.merge_turns)
    ]  # fmt: skip
