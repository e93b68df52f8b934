"""``botkit db backup /mnt/nas/`` with the folder missing (a NAS not mounted) refuses
instead of writing a file named ``nas`` next to where the folder should be."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.errors import StoreError
from botkit.store import ConversationStore, StoreSettings
from botkit.store.backup import backup


async def test_a_missing_folder_typed_with_a_trailing_slash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    async with ConversationStore(settings) as store:
        await store.ensure_schema()
    with pytest.raises(StoreError, match="no folder"):
        await backup(settings, f"{tmp_path}/nas/")
    config = tmp_path / "bot.toml"
    config.write_text(f'[store]\nurl = "{settings.url}"\n[backend]\nkind = "echo"\n', "utf-8")
    args = ["db", "backup", f"{tmp_path}/nas/", "-c", str(config)]
    assert await asyncio.to_thread(main, args) == StoreError.exit_code
    assert "no folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["bot.db", "bot.toml"]
    # Named without the slash it is a file to create, as before.
    done = await backup(settings, f"{tmp_path}/nas")
    assert done.path == tmp_path / "nas" and done.path.is_file()
