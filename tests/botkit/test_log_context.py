"""Log lines name the message they are about (on-call audit: a message left no trail).

Inside a reply task every line, botkit's or a third-party library's, carries the
message's channel, conversation id and seq (JSON fields, or a ``[test:1#1]`` prefix);
lines about no message carry none; at DEBUG a message's trail is one line when it is
stored and one when its reply ends.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from core_helpers import RecordingConnector, message

from botkit._logging import configure_logging
from botkit.bot import Bot
from botkit.channel import ReplyStream
from botkit.config import Settings
from botkit.config.settings import LoggingSettings
from botkit.pipeline import Context, Middleware, Next

SDK = "somesdk.http"  # stands for httpx, openai, a platform SDK: loggers botkit does not own


class SdkConnector(RecordingConnector):
    """Its "SDK" logs while sending, in the event loop and in a worker thread."""

    async def send_stream(self, stream: ReplyStream) -> None:
        logging.getLogger(SDK).warning("POST /messages: 502, retrying")
        await asyncio.to_thread(logging.getLogger(SDK).warning, "from a worker thread")
        await super().send_stream(stream)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _logged(json_lines: bool, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(LoggingSettings(level=level, json=json_lines), stream=stream)
    return stream


def _entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def _broken_step(ctx: Context, next: Next) -> None:
    raise RuntimeError("a step broke")


async def _answer(
    settings: Settings,
    *,
    fail: bool,
    texts: tuple[str, ...] = ("hello",),
    step: Middleware | None = None,
) -> list[tuple[int, int]]:
    """Submit ``texts`` (one conversation) and wait for their replies; the ids
    (conversation, seq) of the messages. ``fail``: the channel refuses the reply;
    ``step``: a middleware added to the pipeline."""
    async with Bot(settings) as bot:
        connector = SdkConnector(bot)
        if fail:
            connector.fail_with = RuntimeError("platform said no")
        if step is not None:
            bot.pipeline.add_middleware(step)
        bot.attach_connector(connector)
        ids = []
        logging.getLogger(SDK).warning("before the messages")
        for i, text in enumerate(texts):
            receipt = await bot.submit(message(text, f"k{i}"))
            # The task that submitted serves other messages next: not bound to this one.
            logging.getLogger(SDK).warning("submitted")
            ids.append((receipt.conversation_id, receipt.seq))
        assert await bot.drain(10)
        logging.getLogger(SDK).warning("idle: no message now")
    return ids


async def test_a_failed_replys_json_line_names_the_message(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True)
    [(conversation, seq)] = await _answer(make_settings(), fail=True)
    # The delivery's ERROR line (with the connector's exception) and its WARNING.
    failed = [e for e in _entries(stream) if e["level"] in ("ERROR", "WARNING")]
    failed = [e for e in failed if e["logger"] == "botkit.bot"]
    assert any("platform said no" in e.get("exception", "") for e in failed)
    assert len(failed) >= 2
    assert {(e["channel"], e["conversation"], e["seq"]) for e in failed} == {
        ("test", conversation, seq)
    }


async def test_a_reply_that_failed_in_the_pipeline_names_its_message(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True)
    [(conversation, seq)] = await _answer(make_settings(), fail=False, step=_broken_step)
    # The pipeline's line: the customer gets the fallback reply.
    [failed] = [e for e in _entries(stream) if e["level"] == "ERROR"]
    assert "a step broke" in failed["message"] + failed.get("exception", "")
    assert (failed["channel"], failed["conversation"], failed["seq"]) == ("test", conversation, seq)


async def test_a_third_party_line_in_the_reply_task_names_the_message(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True)
    [_, (conversation, seq)] = await _answer(make_settings(), fail=False, texts=("hi", "again"))
    sdk = [e for e in _entries(stream) if e["logger"] == SDK]
    retrying = [e for e in sdk if e["message"].startswith("POST")]
    threaded = [e for e in sdk if e["message"] == "from a worker thread"]
    assert len(retrying) == len(threaded) == 2
    # Each reply's lines name its own message, the thread's too.
    expected = [(conversation, 1), (conversation, seq)]
    assert [(e["conversation"], e["seq"]) for e in retrying] == expected
    assert [(e["conversation"], e["seq"]) for e in threaded] == expected
    assert {e["channel"] for e in retrying + threaded} == {"test"}


async def test_lines_about_no_message_carry_no_identity(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True, level="DEBUG")
    [(conversation, seq)] = await _answer(make_settings(), fail=True)
    entries = _entries(stream)
    # The intake's line names the message, and the task that submitted it is not left
    # bound to it afterwards.
    [stored] = [e for e in entries if e["message"].startswith("message stored")]
    assert (stored["channel"], stored["conversation"], stored["seq"]) == ("test", conversation, seq)
    outside = [
        e for e in entries
        if e["message"] in ("before the messages", "submitted", "idle: no message now")
        or e["message"].startswith(("bot 'botkit' started", "conversation store open"))
    ]  # fmt: skip
    assert len(outside) == 5
    for entry in outside:
        assert not {"channel", "conversation", "seq"} & entry.keys()


async def test_plain_lines_get_a_short_prefix_only_inside_a_message(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=False)
    [(conversation, seq)] = await _answer(make_settings(), fail=True)
    lines = stream.getvalue().splitlines()
    failed = [line for line in lines if " ERROR   botkit.bot " in line]
    assert failed
    for line in failed:
        assert f" ERROR   botkit.bot [test:{conversation}#{seq}]: " in line
    [idle] = [line for line in lines if "idle: no message now" in line]
    assert idle.endswith(f"WARNING {SDK}: idle: no message now")


async def test_at_debug_a_message_is_traced_from_stored_to_its_replys_end(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True, level="DEBUG")
    [(conversation, seq)] = await _answer(make_settings(), fail=False)
    ours = [
        e for e in _entries(stream)
        if e.get("conversation") == conversation and e.get("seq") == seq
        and e["logger"] == "botkit.bot"
    ]  # fmt: skip
    stored = [e for e in ours if e["message"].startswith("message stored")]
    ended = [e for e in ours if e["message"].startswith("reply ended")]
    assert len(stored) == len(ended) == 1
    assert stored[0]["level"] == ended[0]["level"] == "DEBUG"
    assert "(a new conversation)" in stored[0]["message"]
    assert ended[0]["message"].startswith("reply ended: sent; first text ")
    assert ended[0]["message"].endswith(" s")


async def test_at_info_an_answered_message_writes_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    stream = _logged(json_lines=True)
    settings = make_settings(language={"detector": {"kind": "langdetect"}})
    await _answer(settings, fail=False, texts=("Hello, where is my order 4711? It is late.",))
    entries = [e["message"] for e in _entries(stream)]
    during = entries[entries.index("before the messages") : entries.index("idle: no message now")]
    # The SDK's lines only: nothing of botkit's (the conversation's language went to
    # DEBUG: one line per new conversation, half of INFO's lines in a burst).
    assert during == ["before the messages", "submitted", "POST /messages: 502, retrying",
                      "from a worker thread"]  # fmt: skip
