"""``botkit conversations find|show`` with text that changes length when case-folded
(the MATCH column still shows the match), invisible format characters (escaped, but
an emoji's or a Persian word's joiner kept in message text), and a reply's
``source_error`` (shown to the operator, left out of ``botkit data export``, the file a
customer gets)."""

from __future__ import annotations

import asyncio
import json
import sys
import unicodedata
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.cli._conversations import shown
from botkit.events import Contact, InboundMessage
from botkit.store import ConversationStore, StoreSettings, migrate

_SOURCE_ERROR = "BackendError: http://llm-7.internal:8000/v1 answered HTTP 500"


async def _fill(url: str) -> dict[str, int]:
    await migrate.upgrade(url)
    ids: dict[str, int] = {}
    async with ConversationStore(StoreSettings(url=url)) as store:

        async def say(key: str, text: str, n: int) -> int:
            msg = InboundMessage("web", key, Contact("web", key, "Visitor", None), text, f"d{n}")
            ids[key] = (await store.intake(msg, text=text)).conversation.id
            return ids[key]

        await say("sharp-s", "ß" * 100 + " refund here", 1)
        await say("dotted-i", "İ" * 60 + " REFUND now", 2)
        await say("ligature", "ﬁ" * 70 + " Refund please", 3)
        await say("zero\u200bwidth", "family 👨\u200d👩\u200d👧 hidden\u200b\ufeff\u2060x", 4)
        conv = await say("fallback", "hello", 5)
        await store.append_outbound(
            conv, "Sorry, try again later", in_reply_to_seq=1,
            source="fallback", source_error=_SOURCE_ERROR,
        )  # fmt: skip
    return ids


@pytest.fixture
def filled(tmp_path: Path, core_db_url: str) -> tuple[str, dict[str, int]]:
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "{core_db_url}"\n', encoding="utf-8")
    return str(config), asyncio.run(_fill(core_db_url))


def _rows(out: str) -> dict[str, str]:
    """find's lines by conversation key: its MATCH column."""
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
    return {row[2]: row[6] for row in rows}


def test_the_match_column_shows_the_match_after_text_that_folds_longer(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = filled
    assert main(["conversations", "find", "--text", "refund", "-c", config]) == 0
    match = _rows(capsys.readouterr().out)
    assert match["sharp-s"].endswith("ß refund here") and "…" in match["sharp-s"]
    assert match["dotted-i"].endswith("İ REFUND now")
    assert match["ligature"].endswith("ﬁ Refund please")


def test_invisible_characters_are_escaped_but_an_emojis_joiners_kept(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert main(["conversations", "find", "--text", "family", "-c", config]) == 0
    out = capsys.readouterr().out
    assert "zero\\u200bwidth" in out  # the key: nothing hides in it
    assert "👨\u200d👩\u200d👧" in out  # the emoji reads as one
    assert "hidden\\u200b\\ufeff\\u2060x" in out
    for char in "\u200b\ufeff\u2060":
        assert char not in out

    assert main(["conversations", "show", str(ids["zero\u200bwidth"]), "-c", config]) == 0
    out = capsys.readouterr().out
    assert "👨\u200d👩\u200d👧" in out and "hidden\\u200b\\ufeff\\u2060x" in out
    assert "\u200b" not in out


def test_shown_escapes_every_format_character() -> None:
    assert shown("a\u00adb\U000e0041\U000e007fc") == "a\\xadb\\U000e0041\\U000e007fc"
    # A joiner between two visible characters: kept in message text only.
    assert shown("a\u200db", joiners=True) == "a\u200db"
    assert shown("a\u200db") == "a\\u200db"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want": ZWNJ inside
    assert shown(persian, joiners=True) == persian
    # One at an edge, beside a space or beside another invisible one hides nothing.
    assert shown("\u200da \u200d b\u200d", joiners=True) == "\\u200da \\u200d b\\u200d"
    assert shown("a\u200d\u200bb", joiners=True) == "a\\u200d\\u200bb"
    every = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert shown("x".join(every)).count("\\") == len(every)


def test_source_error_is_shown_to_the_operator_not_exported_to_the_customer(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert main(["conversations", "show", str(ids["fallback"]), "-c", config]) == 0
    reply = capsys.readouterr().out.splitlines()[-1]
    assert f"source fallback ({_SOURCE_ERROR})" in reply.split("\t")[3]

    assert main(["conversations", "show", str(ids["fallback"]), "--json", "-c", config]) == 0
    out_msg = json.loads(capsys.readouterr().out)["messages"][-1]
    assert (out_msg["source"], out_msg["source_error"]) == ("fallback", _SOURCE_ERROR)

    assert main(["data", "export", "web", "fallback", "-c", config]) == 0
    exported = capsys.readouterr().out
    (conversation,) = json.loads(exported)["conversations"]
    (sent,) = [m for m in conversation["messages"] if m["direction"] == "out"]
    assert sent["source"] == "fallback"  # what kind of reply they got
    assert "source_error" not in sent and "llm-7.internal" not in exported
