"""The console connector on a real bot: lines in through a pipe, streamed replies out."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.events import Button
from botkit.handoff.texts import RETURN_REPLIES
from botkit.pipeline import Context, Handler
from connectors.console import ConsoleConfig, ConsoleConnector


def settings(tmp_path: Path, **console: object) -> Settings:
    return settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"},
            "backend": {"kind": "echo"},
            "connectors": {"console": {"user": "tester", **console}},
        },
        environ={},
    )


async def chat(tmp_path: Path, script: str, **console: object) -> tuple[str, Bot]:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, script.encode("utf-8"))
    os.close(write_fd)
    stdin = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
    out = io.StringIO()
    bot = Bot(settings(tmp_path, **console), connectors=[])
    async with bot:
        config = ConsoleConfig.model_validate(bot.settings.connectors["console"])
        bot.attach_connector(ConsoleConnector(config, bot, stdin=stdin, stdout=out))
        await bot.run()
    return out.getvalue(), bot


async def test_scripted_chat_until_end_of_input(tmp_path: Path) -> None:
    output, _ = await chat(tmp_path, "hello bot\n\nhow are you?\n")
    assert output == (
        "you> bot> echo: hello bot\n"
        "you> you> bot> echo: how are you?\n"  # the empty line just prompts again
        "you> \n"
    )
    async with Bot(settings(tmp_path), connectors=[]) as bot:
        rows = await bot.store.messages_after("console", "console:tester", 0, 10)
    assert [m.text for m in rows] == [
        "hello bot", "echo: hello bot", "how are you?", "echo: how are you?",
    ]  # fmt: skip


async def test_quit_command_and_custom_prompts(tmp_path: Path) -> None:
    output, _ = await chat(tmp_path, "one\n/quit\nnever sent\n", prompt="> ", bot_prefix="< ")
    assert output == "> < echo: one\n> "


async def test_hostile_input_lines(tmp_path: Path) -> None:
    # Invalid UTF-8 from the terminal becomes U+FFFD; control characters are removed.
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"bad \xff bytes \x00\x1b[31m\n")
    os.close(write_fd)
    stdin = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
    out = io.StringIO()
    async with Bot(settings(tmp_path), connectors=[]) as bot:
        bot.attach_connector(
            ConsoleConnector(ConsoleConfig(user="t"), bot, stdin=stdin, stdout=out)
        )
        await bot.run()
    assert "bot> echo: bad \ufffd bytes [31m\n" in out.getvalue()


async def test_buttons_are_listed(tmp_path: Path) -> None:
    class Menu(Handler):
        async def handle(self, ctx: Context) -> None:
            ctx.set_reply("Pick one:", buttons=(Button("Orders", "orders"),))

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"menu\n")
    os.close(write_fd)
    out = io.StringIO()
    async with Bot(settings(tmp_path), connectors=[]) as bot:
        bot.pipeline.add_handler(Menu())
        stdin = os.fdopen(read_fd, "r", encoding="utf-8")
        bot.attach_connector(
            ConsoleConnector(ConsoleConfig(user="t"), bot, stdin=stdin, stdout=out)
        )
        await bot.run()
    assert "bot> Pick one:\n  [Orders] -> type: orders\n" in out.getvalue()


def test_config_is_typed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, colour="red", reply_timeout_seconds=-1)
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("connectors.console.colour: unknown key") for p in found)
    assert any(
        p.startswith("connectors.console.reply_timeout_seconds: input should be greater")
        for p in found
    )


async def test_a_message_the_bot_does_not_answer_does_not_hold_the_prompt(
    tmp_path: Path,
) -> None:
    # Handed to a human, or over the rate limit: no reply comes, and the console goes
    # on at once instead of waiting reply_timeout_seconds for one.
    read_fd, write_fd = os.pipe()
    script = "hello\n/human\nare you there?\n/bot\none\ntwo\nthree\n"
    os.write(write_fd, script.encode())
    os.close(write_fd)
    stdin = os.fdopen(read_fd, "r", encoding="utf-8")
    out = io.StringIO()
    config = settings_from_mapping(
        {
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"},
            "backend": {"kind": "echo"},
            "bot": {"rate_limit": {"messages": 3, "window_seconds": 3600}},
            "plugins": {"handoff": {}},
            "connectors": {"console": {"user": "tester", "reply_timeout_seconds": 3600}},
        },
        environ={},
    )
    async with Bot(config, connectors=[]) as bot:
        console = ConsoleConfig.model_validate(bot.settings.connectors["console"])
        bot.attach_connector(ConsoleConnector(console, bot, stdin=stdin, stdout=out))
        # Not an hour per unanswered line: two minutes are ample on a loaded machine.
        await asyncio.wait_for(bot.run(), 120)
    assert out.getvalue().split("you> ") == [
        "",
        "bot> echo: hello\n",  # 1st message this hour
        "bot> Thanks! A colleague will take over and reply here as soon as they can. "
        "Send /bot to talk to the bot again.\n",  # 2nd
        # With a human the limit does not count (the messages are the agent's).
        "[for the human agent: their answers show here]\n",
        f"bot> {RETURN_REPLIES['en']}\n",
        # 3rd; the line the agent left unanswered reaches the model with it, as one
        # customer turn (botkit.pipeline.turns)
        "bot> echo: are you there?\n\none\n",
        # two: over the limit, which the first refusal says
        "bot> You are sending messages faster than I can answer. Please wait a moment "
        "and try again.\n",
        "",  # three: over the limit, silently: the prompt comes back at once
        "\n",
    ]
