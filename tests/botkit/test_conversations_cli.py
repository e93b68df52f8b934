"""``botkit conversations find|show``: the on-call engineer finds an anonymous visitor's
conversation by time, text or a missing answer, and reads it, without SQL (SQLite; the
store's queries are tested on both databases in tests/botkit/store/test_store_search.py).
Also: ``botkit data export`` names each conversation by the id logs use."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.cli._conversations import STATUSES, shown
from botkit.events import Contact, InboundMessage
from botkit.store import (
    ConversationStatus,
    ConversationStore,
    InboundFinish,
    StoreSettings,
    migrate,
)

_HOSTILE = "pay now \x1b[2J\x1b]0;pwned\x07 \u202egnp.exe\u202c ok"


async def _fill(url: str) -> dict[str, int]:
    """Three web conversations: an answered one, a hostile one whose reply failed, and
    one in German (working language English) nobody answered."""
    await migrate.upgrade(url)
    ids: dict[str, int] = {}
    async with ConversationStore(StoreSettings(url=url)) as store:

        async def say(key: str, text: str, n: int, working: str | None = None) -> int:
            msg = InboundMessage("web", key, Contact("web", key, "Visitor", None), text, f"d{n}")
            stored = await store.intake(msg, text=text, working_text=working,
                                        language="de" if working else None)  # fmt: skip
            ids[key] = stored.conversation.id
            return stored.conversation.id

        conv = await say("s:answered", "hello there", 1)
        last = (await store.conversation_messages(conv))[-1].message
        await store.append_outbound(conv, "hi!", in_reply_to_seq=1, finish=InboundFinish(last))
        conv = await say("s:hostile", _HOSTILE, 2)
        await store.append_outbound(conv, "sorry", in_reply_to_seq=1, status="failed",
                                    error="HTTP 502 \x1b[31mred")  # fmt: skip
        await say("s:german", "Meine Bestellung 100% kaputt", 3, working="My order 100% broken")
    return ids


@pytest.fixture
def filled(tmp_path: Path, core_db_url: str) -> tuple[str, dict[str, int]]:
    config = tmp_path / "bot.toml"
    # Only [store] and [logging] are read: a channel whose secret is not set is no problem.
    config.write_text(
        f'[store]\nurl = "{core_db_url}"\n[connectors.slack]\nenabled = true\n'
        'bot_token = "${NOT_SET_ANYWHERE}"\n',
        encoding="utf-8",
    )
    return str(config), asyncio.run(_fill(core_db_url))


def _find(config: str, *options: str) -> int:
    return main(["conversations", "find", "-c", config, *options])


def test_find_by_text_in_either_language_and_by_missing_answer(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert _find(config, "--text", "ORDER") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# conversations, newest first; times in UTC; read message ids ")
    (row,) = [line for line in out if not line.startswith("#")]
    conv_id, channel, key, status, active, count, match = row.split("\t")
    assert (int(conv_id), channel, key, status, count) == (ids["s:german"], "web", "s:german",
                                                           "bot", "1")  # fmt: skip
    assert match == "seq=1 customer: My order 100% broken"  # the language that held it
    assert len(active) == len("2026-11-30 14:02:00")

    assert _find(config, "--unanswered") == 0
    keys = [line.split("\t")[2] for line in capsys.readouterr().out.splitlines()[2:]]
    assert keys == ["s:german", "s:hostile"]  # no answer; a failed one

    assert _find(config, "--text", "%") == 0  # a literal percent sign, not "anything"
    keys = [line.split("\t")[2] for line in capsys.readouterr().out.splitlines()[2:]]
    assert keys == ["s:german"]
    assert _find(config, "--text", "_") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "# no conversation matches"

    assert _find(config, "--since", "1h", "--status", "bot", "--limit", "2", "--channel",
                 "web") == 0  # fmt: skip
    keys = [line.split("\t")[2] for line in capsys.readouterr().out.splitlines()[2:]]
    assert keys == ["s:german", "s:hostile"]
    assert _find(config, "--until", "2000-01-01") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "# no conversation matches"


def test_hostile_text_never_reaches_the_terminal(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert _find(config, "--text", "pay now") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out  # visible instead

    assert main(["conversations", "show", str(ids["s:hostile"]), "-c", config]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    header, _, first, reply = out.splitlines()
    assert f"web:{ids['s:hostile']} in the logs" in header and "times in UTC" in header
    assert first.split("\t")[:3][0] == "1" and first.split("\t")[2] == "customer s:hostile"
    assert reply.split("\t")[2:4] == ["bot", "failed (HTTP 502 \\x1b[31mred) reply to 1"]

    assert _find(config, "--text", "pay now", "--json") == 0
    out = capsys.readouterr().out
    assert out.isascii()
    (found,) = json.loads(out)["conversations"]
    assert found["match"]["text"] == _HOSTILE and found["id"] == ids["s:hostile"]


def test_show_gives_every_message_with_languages(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert main(["conversations", "show", str(ids["s:german"]), "-c", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split("\t")[4:] == ["de", "Meine Bestellung 100% kaputt"]
    assert lines[3].split("\t")[4:] == ["working", "My order 100% broken"]
    assert main(["conversations", "show", str(ids["s:answered"]), "--json", "-c", config]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(m["seq"], m["author"], m["status"]) for m in data["messages"]] == [
        (1, "customer", "answered"),
        (2, "bot", "sent"),
    ]
    assert data["messages"][0]["writer"] == "s:answered"
    assert main(["conversations", "show", "999", "-c", config]) == 1
    assert "no conversation with id 999" in capsys.readouterr().err
    # Ids grow past the million a --limit is capped at.
    assert main(["conversations", "show", "2000000", "-c", config]) == 1
    assert "no conversation with id 2000000" in capsys.readouterr().err
    for bad in ("0", "x", str(2**63)):
        with pytest.raises(SystemExit) as stopped:
            main(["conversations", "show", bad, "-c", config])
        assert stopped.value.code == 2
        assert "not a conversation id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--since", "yesterday-ish"], "not a time: 'yesterday-ish'"),
        (["--until", "2h30"], "not a time"),
        (["--since", "9999999d"], "too far back"),
        (["--text", "a\x00b"], "NUL"),
        (["--text", "x" * 100_000], "at most 1000"),
        (["--status", "open"], "invalid choice"),
        (["--since", "1h", "--until", "2h"], "is after --until"),
        (["--limit", "0"], "must be 1 to"),
    ],
)
def test_bad_options_are_usage_errors(
    filled: tuple[str, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    says: str,
) -> None:
    config, _ = filled
    with pytest.raises(SystemExit) as stopped:
        _find(config, *options)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert says in err and len(err) < 2000  # a 100k-character value is not echoed


def test_a_channel_the_shell_could_not_decode_is_refused(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = filled
    assert _find(config, "--channel", "web\udcff") == 1
    assert "channel contains a lone surrogate" in capsys.readouterr().err


def test_times_and_snippets() -> None:
    from botkit.cli._conversations import moment

    assert moment("2026-11-30 14:02").isoformat() == "2026-11-30T14:02:00+00:00"
    assert moment("2026-11-30T15:02+01:00").isoformat() == "2026-11-30T14:02:00+00:00"
    assert moment("2026-11-30T14:02Z").isoformat() == "2026-11-30T14:02:00+00:00"
    assert shown("a\n\tb \u2066x\u2069 \x9bc", 100) == "a b \\u2066x\\u2069 \\x9bc"
    assert shown("x" * 200, 10) == "x" * 9 + "…"
    assert STATUSES == tuple(s.value for s in ConversationStatus)


def test_export_names_each_conversation_by_its_id(
    filled: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = filled
    assert main(["data", "export", "web", "s:hostile", "-c", config]) == 0
    (conversation,) = json.loads(capsys.readouterr().out)["conversations"]
    assert conversation["id"] == ids["s:hostile"]
    assert {m["conversation_id"] for m in conversation["messages"]} == {ids["s:hostile"]}
