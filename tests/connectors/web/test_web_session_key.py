"""The key of the server's session tokens when no secret is configured: made once and kept
in the store, so a restart or another replica on the same database keeps visitors signed
in; an explicit site_secret still keys them; an empty secret is a config error."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from web_helpers import SECRET, WebHarness, reply_to, serve, web_settings

from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.errors import ConfigError
from botkit.store import ConversationStore, StoreSettings
from botkit.store._runner import create_runner
from connectors.web.identity import IdentityService

_LOGGER = "connectors.web"
# No site_secret and no user_token_secret: the shipped config.example.toml's web table.
_NO_SECRETS: dict[str, Any] = {"site_secret": None, "user_token_secret": None}


def _settings(db: Path, **web: Any) -> Settings:
    return web_settings(db, {**_NO_SECRETS, **web})


async def _stored_names(url: str) -> list[str]:
    runner = create_runner(url, pooled=False)
    try:
        rows = await runner.read(lambda c: c.exec_driver_sql("SELECT name FROM session_keys").all())
        return sorted(row[0] for row in rows)
    finally:
        await runner.dispose()


def _key_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(_LOGGER) and "session key" in r.getMessage()
    ]


async def test_a_token_survives_a_restart_without_site_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator review's case: the reply a restart stores must reach the visitor."""
    caplog.set_level(logging.INFO)
    db = tmp_path / "bot.db"
    async with AsyncExitStack() as stack:
        before = await serve(stack, Bot(_settings(db)))
        v = await before.visitor()
        token = str(v.token)
        await v.send("where is my parcel?", "m1")
        await v.until(reply_to(1))
        await v.close()
    assert _key_lines(caplog) == ["web: session key from the store (no site_secret set)"]

    async with AsyncExitStack() as stack:
        after = await serve(stack, Bot(_settings(db)))
        history = await after.history(token)  # HTTP 200, not 401 invalid_token
        assert [(m["seq"], m["text"]) for m in history] == [
            (1, "where is my parcel?"),
            (2, "echo: where is my parcel?"),
        ]
        again = await after.visitor(token=token, after_seq=0)
        welcome = again.frames[0]
        assert (welcome["identity"], welcome["last_seq"]) == ("session", 2)
        assert [f["seq"] for f in await _replayed(again, 2)] == [1, 2]
        await again.close()


async def _replayed(v: Any, count: int) -> list[dict[str, Any]]:
    while len(v.stored()) < count:
        await v.next()
    stored: list[dict[str, Any]] = v.stored()
    return stored


async def test_replicas_without_site_secret_accept_each_others_tokens(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        settings = _settings(tmp_path / "shared.db")
        a = await serve(stack, Bot(settings))
        b = await serve(stack, Bot(settings))
        token = await a.session()
        await b.post(token, "m1", "hello from b")
        assert [m["seq"] for m in await a.history(token, wait=5)][:1] == [1]


async def test_site_secret_keys_the_tokens_and_takes_precedence(web: WebHarness) -> None:
    # The default harness sets site_secret (and user_token_secret): keyed as before this
    # change, so a process of the previous release and this one accept each other's.
    token = await web.session()
    before = IdentityService(
        site_key="shop", site_secret=SECRET, session_ttl_s=3600,
        user_token_max_ttl_s=3600, require_identity=False,
    )  # fmt: skip
    assert before.verify_token(token).kind == "session"
    assert await _stored_names(web.bot.settings.store.url) == []  # none was made


async def test_the_key_is_logged_once_with_its_source(
    make_web: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await make_web()
    assert _key_lines(caplog) == ["web: session key derived from site_secret"]
    caplog.clear()
    await make_web(site_secret=None)
    assert _key_lines(caplog) == [
        "web: session key derived from user_token_secret (no site_secret set)"
    ]


async def test_the_stored_key_is_the_stores_and_no_process_makes_its_own(
    tmp_path: Path,
) -> None:
    db = tmp_path / "bot.db"
    async with AsyncExitStack() as stack:
        web = await serve(stack, Bot(_settings(db)))
        token = await web.session()
    url = f"sqlite+aiosqlite:///{db}"
    assert await _stored_names(url) == ["web"]
    async with ConversationStore(StoreSettings(url=url)) as store:
        key = await store.session_key("web")
    ids = IdentityService(
        site_key="shop", site_secret=None, session_ttl_s=3600,
        user_token_max_ttl_s=3600, require_identity=False,
    )  # fmt: skip
    ids.use_stored_key(key)
    assert ids.verify_token(token).kind == "session"
    fresh = IdentityService(
        site_key="shop", site_secret=None, session_ttl_s=3600,
        user_token_max_ttl_s=3600, require_identity=False,
    )  # fmt: skip
    with pytest.raises(Exception, match="session key"):
        fresh.issue(fresh.new_session())  # no silent per-process key any more


# -- (a) an empty or short secret is a config error naming its key --------------------------


def _problems(web: dict[str, Any], env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"connectors": {"web": web}}, environ=env)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("key", ["site_secret", "user_token_secret"])
@pytest.mark.parametrize("value", ["", "short"])
def test_an_empty_or_short_secret_is_refused_under_its_key(key: str, value: str) -> None:
    found = _problems({key: "${SECRET}"}, {"SECRET": value})
    assert any(p.startswith(f"connectors.web.{key}:") for p in found), found
    assert any("at least 16 characters" in p for p in found), found


def test_an_empty_secret_is_refused_next_to_the_other_problems() -> None:
    found = _problems({"site_secret": "${S}", "theme_color": "red"}, {"S": ""})
    assert sorted(p.split(":", 1)[0] for p in found) == [
        "connectors.web.site_secret", "connectors.web.theme_color"
    ]  # fmt: skip


def test_a_disabled_web_table_does_not_need_its_secret() -> None:
    settings = settings_from_mapping(
        {"connectors": {"web": {"enabled": False, "site_secret": "${NOT_SET_ANYWHERE}"}}},
        environ={},
    )
    assert settings.connectors["web"] == {"enabled": False}
