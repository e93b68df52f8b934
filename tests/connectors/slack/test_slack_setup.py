"""What an operator gets wrong when setting the app up, and what the connector says about
it: the wrong kind of token, scopes left out of the app (or added without reinstalling
it), a bot removed from a channel or an app uninstalled. The fake answers as Slack does:
``X-OAuth-Scopes`` on ``auth.test``, ``needed`` / ``provided`` on ``missing_scope``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from slack_helpers import MakeSlack, message

from botkit.config import settings_from_mapping
from botkit.errors import ConfigError, ConnectorError
from botkit.events import OutboundReply
from botkit.testing.fake_slack import FakeSlack
from connectors.slack._scopes import EVENT_SCOPES, METHOD_SCOPES

ROOT = Path(__file__).parents[3]
ALL_SCOPES = ",".join(sorted({*EVENT_SCOPES.values(), "chat:write", "users:read"}))


class SetupSlack(FakeSlack):
    """``FakeSlack`` that also sends what these tests need from Slack's answers.

    ``scopes``: the ``X-OAuth-Scopes`` header of ``auth.test`` (None: not sent).
    ``auth_test``: fields to change in the ``auth.test`` answer (None removes one).
    ``refuse``: method -> the fields of its ``ok: false`` answer.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.scopes: str | None = ALL_SCOPES
        self.auth_test: dict[str, Any] = {}
        self.refuse: dict[str, dict[str, Any]] = {}

    async def _api(self, request: web.Request) -> web.StreamResponse:
        response = await super()._api(request)
        method = request.match_info["method"]
        if method in self.refuse:
            return web.json_response({"ok": False, **self.refuse[method]})
        if method == "auth.test" and isinstance(response, web.Response) and response.body:
            data = json.loads(bytes(response.body))  # type: ignore[arg-type]
            if data.get("ok"):
                data.update(self.auth_test)
                data = {k: v for k, v in data.items() if v is not None}
            headers = {"X-OAuth-Scopes": self.scopes} if self.scopes is not None else {}
            return web.json_response(data, headers=headers)
        return response


@pytest.fixture
async def fake_slack() -> AsyncIterator[SetupSlack]:
    fake = SetupSlack(users={"U1": {"name": "ann", "locale": "fr-FR"}})
    async with fake:
        yield fake


async def test_a_user_token_is_refused_at_connect(
    make_slack: MakeSlack, fake_slack: SetupSlack
) -> None:
    # auth.test accepts a user token (xoxp-) and answers with the person, without bot_id.
    fake_slack.auth_test = {"bot_id": None, "user": "ann", "user_id": "U1"}
    slack = await make_slack(connect=False)
    with pytest.raises(ConnectorError, match=r"not a bot token.*xoxb-"):
        await slack.connector.connect()


@pytest.mark.parametrize(
    ("token", "what"),
    [
        ("xoxp-1-2-3", "user token"),
        ("xoxe.xoxp-1-2", "user token"),
        ("xoxe.xoxb-1-2", "rotating token"),
        ("xoxe-1-2", "refresh token"),
        ("xapp-1-2", "app-level token"),
    ],
)
def test_tokens_that_are_not_a_bot_token_are_config_errors(token: str, what: str) -> None:
    section = {"bot_token": "${TOKEN}", "signing_secret": "s"}
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"connectors": {"slack": section}}, environ={"TOKEN": token})
    [problem] = info.value.problems
    assert problem.path == "connectors.slack.bot_token" and what in problem.message
    assert "xoxb-" in problem.message and token not in problem.message


async def test_a_token_without_chat_write_is_refused_at_connect(
    make_slack: MakeSlack, fake_slack: SetupSlack
) -> None:
    fake_slack.scopes = "app_mentions:read,im:history,users:read"
    slack = await make_slack(connect=False)
    with pytest.raises(ConnectorError, match=r"lacks the scope chat:write.*reinstall"):
        await slack.connector.connect()


async def test_other_missing_scopes_are_named_at_connect(
    make_slack: MakeSlack, fake_slack: SetupSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # Scopes added to the manifest count only after a reinstall: say which are missing.
    fake_slack.scopes = "chat:write,app_mentions:read,im:history,channels:history"
    caplog.set_level(logging.WARNING, logger="connectors.slack")
    slack = await make_slack()
    [warning] = [r.getMessage() for r in caplog.records if "lacks the scopes" in r.getMessage()]
    named = re.findall(r"([a-z_]+:[a-z_]+) \(", warning)
    assert named == ["groups:history", "mpim:history", "users:read"], warning
    assert "reinstall" in warning
    await slack.post_event(message("still answered"))  # what it has still works
    await slack.reply_in("D1", None, "echo: still answered")


async def test_all_scopes_or_no_header_warn_of_nothing(
    make_slack: MakeSlack, fake_slack: SetupSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.slack")
    await make_slack()
    fake_slack.scopes = None  # a proxy that drops headers: nothing to check
    await make_slack()
    assert not [r for r in caplog.records if "scope" in r.getMessage()]


async def test_missing_scope_at_runtime_names_the_scope(
    make_slack: MakeSlack, fake_slack: SetupSlack
) -> None:
    slack = await make_slack()
    fake_slack.refuse["chat.postMessage"] = {
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": "users:read,im:history",
    }
    reply = OutboundReply(channel="slack", conversation_key="C5", text="hello")
    with pytest.raises(ConnectorError) as info:
        await slack.connector.send(reply)
    text = str(info.value)
    assert "missing_scope" in text and "needed: chat:write" in text
    assert "has: users:read,im:history" in text and "reinstall" in text
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # permanent: not retried


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("not_in_channel", "/invite"),
        ("channel_not_found", "cannot see it"),
        ("is_archived", "archived"),
        ("token_revoked", "reinstall"),
        ("account_inactive", "deactivated"),
    ],
)
async def test_a_bot_removed_or_uninstalled_fails_once_with_a_hint(
    make_slack: MakeSlack, fake_slack: SetupSlack, code: str, hint: str
) -> None:
    slack = await make_slack(typing_indicator="off")
    fake_slack.refuse["chat.postMessage"] = {"error": code}
    await slack.post_event(message("anyone there?", channel="D7"))

    await slack.reply_failed("D7")
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # never tried again
    reply = OutboundReply(channel="slack", conversation_key="D7", text="again?")
    with pytest.raises(ConnectorError, match=rf"{code} \(.*{re.escape(hint)}"):
        await slack.connector.send(reply)


async def test_an_app_token_without_connections_write_is_named(
    make_slack: MakeSlack, fake_slack: SetupSlack
) -> None:
    fake_slack.refuse["apps.connections.open"] = {
        "error": "missing_scope",
        "needed": "connections:write",
        "provided": "authorizations:read",
    }
    slack = await make_slack(
        mode="socket", app_token="${SLACK_APP_TOKEN}", signing_secret=None, connect=False
    )
    with pytest.raises(ConnectorError, match="needed: connections:write"):
        await asyncio.wait_for(slack.connector.connect(), 5)


def _manifest_list(section: str) -> set[str]:
    """The ``- item`` lines of one list in manifest.yaml (its key, e.g. ``bot:``)."""
    items: set[str] = set()
    inside = False
    for line in (ROOT / "connectors/slack/manifest.yaml").read_text().splitlines():
        code = line.split("#")[0].rstrip()
        if code.strip() == section:
            inside = True
        elif inside and code.strip().startswith("- "):
            items.add(code.strip()[2:].strip())
        elif inside and code.strip():
            break
    return items


def test_manifest_asks_for_exactly_the_scopes_the_code_uses() -> None:
    # Every Web API method the connector's code calls has its scope in METHOD_SCOPES...
    files = (ROOT / "connectors/slack").glob("*.py")
    source = "\n".join(p.read_text() for p in files if p.name != "_scopes.py")
    methods = r'"((?:auth|chat|users|conversations|assistant\.threads)\.[A-Za-z]+)"'
    called = set(re.findall(methods, source))
    sdk_calls = re.findall(r"client\.([a-z]+)_([A-Za-z]+)\(", source)
    called |= {f"{a}.{b}" for a, b in sdk_calls if a != "api"}  # not api_call(method)
    assert called == set(METHOD_SCOPES), called ^ set(METHOD_SCOPES)
    # ...and the manifest asks for those and the events' scopes, and for nothing more.
    events = _manifest_list("bot_events:")
    assert events == set(EVENT_SCOPES)
    needed = {s for s in METHOD_SCOPES.values() if s} | {EVENT_SCOPES[e] for e in events}
    assert _manifest_list("bot:") == needed


async def test_an_exported_bot_token_does_not_warn_at_start(
    make_slack: MakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Audit L3: Bolt's AsyncApp reads SLACK_BOT_TOKEN from the environment by itself (the
    # docs say to export it), and warned at every start that it would be unused.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-fake-token")
    caplog.set_level(logging.DEBUG, logger="connectors.slack")
    await make_slack()
    assert "will be unused" not in caplog.text
