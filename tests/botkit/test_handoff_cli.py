"""``botkit handoff list|release``: what an agent's side does without writing Python."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.cli import main
from botkit.config import load_settings
from botkit.errors import StoreError

# The CLI installs its log handler on the root logger; take it off after each test.


def _converse(config: Path, *texts: str) -> list[str]:
    """Run a bot on ``config`` for ``texts`` (one at a time) and return its replies."""

    async def run() -> list[str]:
        async with Bot(load_settings(config)) as bot:
            bot.attach_connector(RecordingConnector(bot))
            for text in texts:
                await bot.submit(message(text, f"k-{text}"))
                assert await bot.drain(30)
            return [r.text for r in recorder(bot).replies]

    return asyncio.run(run())


def test_an_agent_lists_hand_offs_and_gives_one_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n'
        '[backend]\nkind = "echo"\n[plugins.handoff]\nreturn_command = ""\n',
        encoding="utf-8",
    )
    assert main(["handoff", "list", "-c", str(config)]) == 1  # no database yet
    assert "no database at" in capsys.readouterr().err
    confirmed = _converse(config, "/human", "hello? anyone?")
    assert len(confirmed) == 1  # the confirmation; then the bot stays silent

    assert main(["handoff", "list", "-c", str(config)]) == 0
    said = capsys.readouterr()
    assert said.err == ""  # its result only: no "config: ..." or "store open" lines
    (line,) = said.out.splitlines()
    channel, key, status, since, active = line.split("\t")
    assert (channel, key, status) == ("test", "c1", "waiting_human")
    assert since.startswith("since 2") and active.startswith("active 2")
    assert since.endswith(" UTC") and active.endswith(" UTC")  # not the reader's local time
    assert since.removeprefix("since ") <= active.removeprefix("active ")

    assert main(["handoff", "release", "test", "c1", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "test c1: waiting_human -> bot"
    assert main(["handoff", "list", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "no conversation is waiting for or with a human"
    # The message written while waiting for a human reaches the model with this one, as
    # one customer turn (botkit.pipeline.turns).
    assert _converse(config, "thanks, and my refund?") == [
        "echo: hello? anyone?\n\nthanks, and my refund?"
    ]

    assert main(["handoff", "release", "test", "nope", "-c", str(config)]) == StoreError.exit_code
    assert "no conversation 'nope' on channel 'test'" in capsys.readouterr().err


@pytest.fixture
def handed_off(tmp_path: Path) -> Path:
    """A config whose database holds conversation c1 on channel test, waiting for a human."""
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[store]\nurl = "sqlite+aiosqlite:///{tmp_path}/bot.db"\n'
        '[backend]\nkind = "echo"\n[plugins.handoff]\nreturn_command = ""\n',
        encoding="utf-8",
    )
    _converse(config, "/human")
    return config


@pytest.mark.parametrize("limit", ["0", "-5", "two"])
def test_handoff_list_limit_must_be_a_positive_whole_number(
    handed_off: Path, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review 3 finding 8: --limit 0 and -5 listed a conversation.
    with pytest.raises(SystemExit) as caught:
        main(["handoff", "list", "--limit", limit, "-c", str(handed_off)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "Traceback" not in err
    assert main(["handoff", "list", "--limit", "1", "-c", str(handed_off)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize(
    ("channel", "key"),
    [("test", "c\udcff1"), ("te\udc80st", "c1"), ("test", "\ud800"), ("test", "c1\udcc3\udca9")],
)
def test_handoff_release_of_a_key_that_is_not_utf8_is_a_clean_error(
    handed_off: Path, channel: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review 3 finding 8: bytes the shell could not decode arrive as lone surrogates
    # (surrogateescape); SQLite's driver raised UnicodeEncodeError with a traceback.
    code = main(["handoff", "release", channel, key, "-c", str(handed_off)])
    assert code == StoreError.exit_code
    err = capsys.readouterr().err
    assert "not valid UTF-8 text" in err and "Traceback" not in err


def test_releasing_a_conversation_already_with_the_bot_says_so(
    handed_off: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review 3 finding 8: it printed "bot -> bot" as if something was handed back.
    assert main(["handoff", "release", "test", "c1", "-c", str(handed_off)]) == 0
    assert capsys.readouterr().out.strip() == "test c1: waiting_human -> bot"
    assert main(["handoff", "release", "test", "c1", "-c", str(handed_off)]) == 0
    assert capsys.readouterr().out.strip() == "test c1: already with the bot"
