"""A file and an agent who gives the conversation back at the same moment.

The web checks that a person has the conversation before it reads a file and again once
it has arrived; those checks only refuse early (409 ``no_agent``, nothing kept). Who the
file is for is decided where it is recorded: the core stores the file's message, then
leaves it to the agent only if they still have the conversation at that moment (a
compare-and-set), and otherwise the bot answers it. So a release that lands after the
last check never leaves a file to an agent who is gone (the visitor waiting for an
answer that never comes): the visitor gets the bot's answer to it. The race is made to
happen, not hoped for: the release is committed, through the agent API, at one exact
step of the upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_web_files import PNG, Files, _files, _release, _with_agent
from web_helpers import reply_to

from botkit.config.settings import BotSettings
from botkit.store import ConversationRecord


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[Files]:
    async for f in _files(tmp_path):
        yield f


def _then_release(
    files: Files, conversation: ConversationRecord, step: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """The core's own ``step``, then the release, committed before the upload goes on."""

    async def step_then_release(*args: Any, **kwargs: Any) -> Any:
        result = await step(*args, **kwargs)
        await _release(files, conversation)
        return result

    return step_then_release


async def test_a_release_after_the_last_check_leaves_the_file_to_the_bot(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    v, conversation = await _with_agent(files.web)
    bot = files.web.bot
    # Between the last check ("a person has it") and the file's message being stored.
    monkeypatch.setattr(bot, "keep_file", _then_release(files, conversation, bot.keep_file))
    resp = await files.upload(v.token, PNG, client_id="late")
    assert resp.status == 201, await resp.text()
    seq = (await resp.json())["seq"]
    shown = await v.until(lambda f: f.get("seq") == seq)
    assert shown["attachments"][0]["name"] == "screen.png"
    # The bot has the conversation when the message is recorded: the bot answers it.
    reply = await v.until(reply_to(seq))
    assert reply["text"] == BotSettings().empty_reply and "agent" not in reply
    (message,) = await bot.store.messages_after("web", conversation.key, seq - 1, 1)
    assert (message.seq, message.status, len(message.attachments)) == (seq, "answered", 1)
    now = await bot.store.get_conversation("web", conversation.key)
    assert now is not None and now.status == "bot"


async def test_a_release_before_the_last_check_keeps_nothing(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the same line: released once the body is read, before the last
    check, the file is refused and not kept (the check did its job)."""
    v, conversation = await _with_agent(files.web)
    bot = files.web.bot
    checks = 0
    with_human = bot.with_human

    async def second_check_after_a_release(*args: Any) -> bool:
        nonlocal checks
        checks += 1
        if checks == 2:  # the body has arrived: the agent leaves now
            await _release(files, conversation)
        return await with_human(*args)

    monkeypatch.setattr(bot, "with_human", second_check_after_a_release)
    resp = await files.upload(v.token, PNG, client_id="late")
    assert resp.status == 409 and (await resp.json())["error"] == "no_agent"
    assert checks == 2
    messages = await bot.store.messages_after("web", conversation.key, 0, 100)
    assert not [m for m in messages if m.attachments]
    held = await bot.kept_files("web", conversation.key, "late")
    assert (held.count, held.same) == (0, None)
