"""docs/plugins.md, "Writing a plugin": its example, installed as written there (the
module, its entry point, its table), runs and does what the page says."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.cli import main
from botkit.config import Settings

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks() -> dict[str, str]:
    """The guide's code blocks, by the comment on their first line."""
    section = GUIDE.read_text("utf-8").split("## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", section, re.DOTALL)
    return {block.splitlines()[0]: block for block in blocks}


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The example package on sys.path, as pip lays out a wheel; returns its table."""
    blocks = _blocks()
    package = tmp_path / "site" / "my_orders"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(blocks["# my_orders/plugin.py"])
    project = tomllib.loads(blocks["# the package's pyproject.toml"])["project"]
    dist = tmp_path / "site" / "my_orders-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-orders\nVersion: 1.0\n")
    entries = project["entry-points"]["botkit.plugins"]
    (dist / "entry_points.txt").write_text(
        "[botkit.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    table: dict[str, object] = tomllib.loads(blocks["# botkit.toml: a table enables it"])
    return table


async def test_the_guide_s_plugin_answers_what_it_knows_and_leaves_the_rest(
    installed: dict[str, object], make_settings: Callable[..., Settings]
) -> None:
    async with Bot(make_settings(**installed)) as bot:  # type: ignore[arg-type]
        bot.attach_connector(RecordingConnector(bot))
        for i, text in enumerate(["/order 1234", "/order 99", "hello"]):
            await bot.submit(message(text, f"k{i}"))
        replies = await recorder(bot).wait_for(3)
        plugin = bot.plugins.get("orders")
        assert plugin is not None and plugin.started == 1  # type: ignore[attr-defined]
    assert [r.text for r in replies] == [
        "Order 1234 is on its way.",
        "No order 99 here: check the number in your confirmation e-mail.",
        "echo: hello",
    ]


def test_a_typo_in_the_guide_s_nested_table_is_an_error(
    installed: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(
        '[backend]\nkind = "echo"\n[plugins.orders]\ntexts.misssing = "x"\n', encoding="utf-8"
    )
    assert main(["check-config", str(config)]) == 2
    assert "plugins.orders.texts.misssing: unknown key" in capsys.readouterr().out
