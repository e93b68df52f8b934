"""Plugins found through a real ``botkit.plugins`` entry point of a test distribution.

The distribution in tests/fixtures/botkit_testplugin is installed the way pip lays out a
wheel: its modules plus a ``*.dist-info`` directory (METADATA, entry_points.txt) on a
sys.path entry. Nothing in importlib.metadata is patched.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import RecordingConnector, message, recorder

from botkit.backends.echo import EchoBackend
from botkit.bot import Bot
from botkit.cli import main
from botkit.config import (
    ComponentSpec,
    Settings,
    resolve_components_or_raise,
    settings_from_mapping,
)
from botkit.errors import ConfigError
from botkit.pipeline import Pipeline
from botkit.plugins import Plugin, PluginConfig, PluginManager, available_plugins
from botkit.store import ConversationStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "botkit_testplugin"


def _install(target: Path) -> None:
    project = tomllib.loads((FIXTURE / "pyproject.toml").read_text("utf-8"))["project"]
    for item in (FIXTURE / "src").iterdir():
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy(item, target / item.name)
    name = project["name"].replace("-", "_")
    dist = target / f"{name}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        "utf-8",
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n", "utf-8")
    (dist / "RECORD").write_text("", "utf-8")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    _install(target)
    return target


@pytest.fixture(autouse=True)
def installed(site_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site_dir))


@pytest.fixture
def events() -> list[str]:
    import botkit_testplugin

    botkit_testplugin.EVENTS.clear()
    return botkit_testplugin.EVENTS


def test_discovered_through_entry_points() -> None:
    found = available_plugins()
    assert found["greeter"] == "botkit_testplugin:GreeterPlugin"
    assert {"exploding", "broken_setup", "lazy"} <= found.keys()


def test_plugin_config_errors_have_key_paths() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"plugins": {"greeter": {"greting": "x", "trigger": 5}}}, environ={})
    found = [str(p) for p in info.value.problems]
    assert "plugins.greeter.greting: unknown key (did you mean 'greeting'?)" in found
    assert "plugins.greeter.trigger: expected a string, got integer" in found


def test_plugin_secret_from_environment_never_prints() -> None:
    settings = settings_from_mapping(
        {"plugins": {"greeter": {"api_token": "${GREETER_TOKEN}"}}},
        environ={"GREETER_TOKEN": "tok-very-secret"},
    )
    (spec,) = resolve_components_or_raise("plugins", settings.plugins)
    assert "tok-very-secret" not in repr(spec.config)
    assert "tok-very-secret" not in str(spec.config)
    assert spec.config.api_token.get_secret_value() == "tok-very-secret"  # type: ignore[attr-defined]


async def test_only_enabled_plugins_are_imported(make_settings: Callable[..., Settings]) -> None:
    sys.modules.pop("botkit_testplugin_lazy", None)
    async with Bot(make_settings(plugins={"lazy": {"enabled": False}})) as bot:
        assert bot.plugins.active == []
    assert "botkit_testplugin_lazy" not in sys.modules
    async with Bot(make_settings(plugins={"lazy": {}})) as bot:
        assert bot.plugins.active == ["lazy"]
    assert "botkit_testplugin_lazy" in sys.modules


async def test_plugin_handler_answers(
    make_settings: Callable[..., Settings], events: list[str]
) -> None:
    settings = make_settings(plugins={"greeter": {"greeting": "Welcome!"}})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        await bot.submit(message("hi", "k1"))
        await bot.submit(message("what are your hours?", "k2"))
        replies = await recorder(bot).wait_for(2)
        assert [r.text for r in replies] == ["Welcome!", "echo: what are your hours?"]
        assert events == ["setup:greeter"]
    assert events == ["setup:greeter", "teardown:greeter"]


async def test_failing_plugin_is_isolated(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(plugins={"exploding": {}, "greeter": {}})
    async with Bot(settings) as bot:
        bot.attach_connector(RecordingConnector(bot))
        with caplog.at_level(logging.ERROR):
            await bot.submit(message("boom please", "k1"))
            await recorder(bot).wait_for(1)
        await bot.submit(message("hi", "k2"))  # the bot and other plugins keep working
        replies = await recorder(bot).wait_for(2)
    assert replies[0].text == settings.bot.fallback_reply
    assert replies[1].text == "Hello from the greeter plugin!"
    assert "plugin 'exploding' failed in _Explode: RuntimeError" in caplog.text


async def test_plugin_failing_setup_is_left_out(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(plugins={"broken_setup": {}, "greeter": {}})
    with caplog.at_level(logging.ERROR):
        async with Bot(settings) as bot:
            assert bot.plugins.active == ["greeter"]
            assert "ConnectionError" in bot.plugins.failed["broken_setup"]
            assert bot.pipeline.owners == ["core", "greeter"]  # nothing of broken_setup
            bot.attach_connector(RecordingConnector(bot))
            await bot.submit(message("boom", "k1"))
            (reply,) = await recorder(bot).wait_for(1)
    assert reply.text == "echo: boom"
    assert "plugin 'broken_setup' failed to set up and is disabled" in caplog.text


async def test_a_teardown_that_hangs_is_cut_off_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A plugin awaiting forever in teardown kept `botkit run` from ever exiting: signals
    # did nothing more, only SIGKILL ended it.
    torn_down: list[str] = []

    class Hangs(Plugin[PluginConfig]):
        async def teardown(self) -> None:
            await asyncio.sleep(3600)

    class Tidy(Plugin[PluginConfig]):
        async def teardown(self) -> None:
            torn_down.append(self.name)

    settings = settings_from_mapping({}, environ={})
    manager = PluginManager(
        [ComponentSpec("tidy", Tidy, PluginConfig()), ComponentSpec("hangs", Hangs, PluginConfig())]
    )
    await manager.setup_all(
        Pipeline(), settings=settings, store=ConversationStore(settings.store),
        backend=EchoBackend(),
    )  # fmt: skip
    async with asyncio.timeout(30):
        await manager.teardown_all(within_s=0.2)
    assert torn_down == ["tidy"]  # torn down after the one that hung (reverse order)
    assert "plugin 'hangs' did not tear down within 0.2 s; cancelled" in caplog.text


def test_check_config_names_a_plugin_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said OK, and the bot then ran without the plugin, with an ERROR line.
    config = tmp_path / "bot.toml"
    config.write_text('[backend]\nkind = "echo"\n[plugins.broken_init]\n', encoding="utf-8")
    assert main(["check-config", str(config)]) == 2
    assert (
        "plugins.broken_init: the plugin cannot be created: ValueError: this plugin needs an "
        "api key in its table"
    ) in capsys.readouterr().out
