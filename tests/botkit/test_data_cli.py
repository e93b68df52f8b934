"""``botkit data export|forget|purge`` and the bot's own retention pass: a person's data
on request, and nothing kept longer than ``[store] retention_days`` (real bot, SQLite)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder
from sqlalchemy import update

from botkit.bot import Bot
from botkit.cli import main
from botkit.config import Settings
from botkit.errors import ConfigError, StoreError
from botkit.events import utcnow
from botkit.store.models import Contact, Conversation


class _Listening(RecordingConnector):
    async def listen(self) -> None:
        await asyncio.Event().wait()


async def _talk(settings: Settings, *texts: tuple[str, str]) -> None:
    """Each (user, text) writes in their own conversation; the bot answers."""
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        for n, (user, text) in enumerate(texts):
            await bot.submit(message(text, f"k{n}", conversation=f"c-{user}", user=user))
        await recorder(bot).wait_for(len(texts))


async def _age_everything(bot: Bot, days: float) -> None:
    then = utcnow() - timedelta(days=days)
    await bot.store._write(
        lambda conn: (
            conn.execute(update(Conversation).values(updated_at=then)),
            conn.execute(update(Contact).values(updated_at=then)),
        )
    )


def _config(tmp_path: Path, core_db_url: str) -> str:
    path = tmp_path / "bot.toml"
    path.write_text(f'[store]\nurl = "{core_db_url}"\n[backend]\nkind = "echo"\n', "utf-8")
    return str(path)


async def test_export_then_forget_a_person(
    make_settings: Callable[..., Settings],
    core_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _talk(make_settings(), ("ann", "my order 42 is late"), ("bob", "hello"))
    config = _config(tmp_path, core_db_url)

    assert await asyncio.to_thread(main, ["data", "export", "test", "ann", "-c", config]) == 0
    exported = json.loads(capsys.readouterr().out)
    texts = [m["text"] for m in exported["conversations"][0]["messages"]]
    assert texts == ["my order 42 is late", "echo: my order 42 is late"]

    assert await asyncio.to_thread(main, ["data", "forget", "test", "ann", "-c", config]) == 0
    assert "deleted 1 contact, 1 conversation, 2 messages and 0 files" in capsys.readouterr().out
    code = await asyncio.to_thread(main, ["data", "export", "test", "ann", "-c", config])
    assert code == StoreError.exit_code
    assert "no contact 'ann' on channel 'test'" in capsys.readouterr().err
    # Bob is untouched.
    assert await asyncio.to_thread(main, ["data", "export", "test", "bob", "-c", config]) == 0


async def test_export_hands_over_the_files_kept_for_the_person(
    make_settings: Callable[..., Settings],
    core_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    await _talk(settings, ("ann", "here is my receipt"), ("bob", "hello"))
    receipt = b"%PDF-1.4 \x00\xff every byte kept"
    async with Bot(settings) as bot:
        for who, client_id, name, data in (
            ("ann", "f1", "../re:ceipt?.pdf", receipt),  # a name no file system takes
            ("ann", "f2", "photo.png", b"\x89PNG ann"),
            ("ann", "f3", "\U0001f600" * 70 + ".png", b"\x89PNG long"),  # 284 bytes
            ("bob", "f1", "bob.png", b"\x89PNG bob"),
        ):
            await bot.keep_file("test", f"c-{who}", client_id=client_id, name=name,
                                media_type="image/png", data=data)  # fmt: skip
    config = _config(tmp_path, core_db_url)
    out = tmp_path / "export" / "ann"
    export = ["data", "export", "test", "ann", "-c", config, "--files", str(out)]

    assert await asyncio.to_thread(main, export) == 0
    files = json.loads(capsys.readouterr().out)["conversations"][0]["files"]
    saved = {f["saved_as"]: (out / f["saved_as"]).read_bytes() for f in files}
    assert sorted(saved.values()) == sorted([receipt, b"\x89PNG ann", b"\x89PNG long"])
    assert sorted(p.name for p in out.iterdir()) == sorted(saved)  # nothing else, nowhere else
    assert any(name.endswith("-_re_ceipt_.pdf") for name in saved)
    # A name too long for a file system is cut, at a character, keeping its extension.
    (long,) = [name for name in saved if "\U0001f600" in name]
    assert len(long.encode()) <= 200 and long.endswith("\U0001f600.png")
    assert {(out / name).stat().st_mode & 0o777 for name in saved} == {0o600}  # personal
    # Run again into the same folder: nothing is overwritten, and the error says where.
    assert await asyncio.to_thread(main, export) == StoreError.exit_code
    assert f"cannot write {out}" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in saved} == saved
    # A failure part-way removes what that run wrote, so it can simply be run again.
    (blocked,) = [name for name in saved if name.endswith("-photo.png")]
    fresh = tmp_path / "export" / "again"
    fresh.mkdir()
    (fresh / blocked).write_bytes(b"someone else's")
    export[-1] = str(fresh)
    assert await asyncio.to_thread(main, export) == StoreError.exit_code
    assert "no file of this export was kept" in capsys.readouterr().err
    assert [p.name for p in fresh.iterdir()] == [blocked]


async def test_purge_by_days_and_its_refusals(
    make_settings: Callable[..., Settings],
    core_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings()
    await _talk(settings, ("ann", "hello"))
    async with Bot(settings) as bot:
        await _age_everything(bot, 40)
    config = _config(tmp_path, core_db_url)
    assert await asyncio.to_thread(main, ["data", "purge", "--days", "60", "-c", config]) == 0
    assert "deleted 0 contacts, 0 conversations" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["data", "purge", "--days", "30", "-c", config]) == 0
    assert "deleted 1 contact, 1 conversation, 2 messages and 0 files" in capsys.readouterr().out
    for days in ("0", "-3", "ten", "99999999999"):
        with pytest.raises(SystemExit) as usage:
            main(["data", "purge", "--days", days, "-c", config])
        assert usage.value.code == 2


def test_a_missing_database_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path}/nowhere/bot.db")
    assert main(["data", "forget", "test", "ann", "-c", config]) == StoreError.exit_code
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


async def test_the_running_bot_purges_what_is_older_than_retention_days(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(store={"retention_days": 30})
    await _talk(settings, ("ann", "hello"))
    async with Bot(settings) as bot:
        await _age_everything(bot, 31)
        bot.attach_connector(_Listening(bot))
        running = asyncio.create_task(bot.run())
        async with asyncio.timeout(30):
            while await bot.store.get_conversation("test", "c-ann") is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        bot.stop()
        await running


@pytest.mark.parametrize("days", [-1, 40_000, "ten", 1.5])
def test_retention_days_must_be_a_sane_whole_number(
    make_settings: Callable[..., Settings], days: object
) -> None:
    with pytest.raises(ConfigError, match="retention_days"):
        make_settings(store={"retention_days": days})


async def test_an_id_the_shell_could_not_decode_names_nobody(
    make_settings: Callable[..., Settings],
    core_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _talk(make_settings(), ("ann", "hello"))
    config = _config(tmp_path, core_db_url)
    for action in ("export", "forget"):
        args = ["data", action, "test", "ann\udcff", "-c", config]  # surrogateescape'd byte
        assert await asyncio.to_thread(main, args) == StoreError.exit_code
        assert "not valid UTF-8 text; nobody has it" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["data", "export", "test", "ann", "-c", config]) == 0


async def test_a_web_user_id_without_its_prefix_says_what_a_web_contact_is(
    make_settings: Callable[..., Settings],
    core_db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The web channel stores a signed-in user as its conversation key, "u:<user id>":
    # an operator who types the site's own user id must learn that, not just "no contact".
    async with Bot(make_settings()) as bot:
        visit = message("hi", "k1", channel="web", conversation="u:12345", user="u:12345")
        await bot.store.intake(visit, text="hi")
    config = _config(tmp_path, core_db_url)
    for action in ("export", "forget"):
        code = await asyncio.to_thread(main, ["data", action, "web", "12345", "-c", config])
        assert code == StoreError.exit_code
        err = capsys.readouterr().err
        assert "no contact '12345' on channel 'web' (a web contact is its conversation" in err
        assert "u:USER_ID for a signed-in user" in err
    # Elsewhere, and for an id that has the prefix, the error stays short.
    assert await asyncio.to_thread(main, ["data", "export", "web", "s:x", "-c", config]) == 1
    assert capsys.readouterr().err.rstrip().endswith("no contact 's:x' on channel 'web'")
    assert await asyncio.to_thread(main, ["data", "export", "web", "u:12345", "-c", config]) == 0
    assert json.loads(capsys.readouterr().out)["external_id"] == "u:12345"
