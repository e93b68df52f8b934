"""Helpers for the Slack tests: a started bot + connector talking to a FakeSlack."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from botkit.backends.protocol import GenerationRequest
from botkit.bot import Bot
from botkit.config import Settings, settings_from_mapping
from botkit.testing.backends import ScriptBackend
from botkit.testing.fake_slack import FakeMessage, FakeSlack, signed_headers
from connectors.slack import SlackConnector

SECRET = "slack-test-signing-secret-0123"
MakeSlack = Callable[..., Awaitable["SlackHarness"]]

_seq = itertools.count(1)

# Fast defaults so tests that are not about pacing do not wait for it.
FAST: dict[str, Any] = {
    "channel_send_interval_s": 0.0,
    "update_interval_s": 0.05,
    "updates_per_minute": 60_000,
    "retry": {"initial_backoff_s": 0.05, "max_backoff_s": 0.2},
}


def new_ts() -> str:
    n = next(_seq)
    return f"{1_600_000_000 + n}.{n:06d}"


def slack_settings(
    db: Path,
    fake: FakeSlack,
    slack: dict[str, Any],
    word_delay: float = 0.0,
    language: dict[str, Any] | None = None,
    plugins: dict[str, Any] | None = None,
) -> Settings:
    return settings_from_mapping(
        {
            "language": language or {},
            "plugins": plugins or {},
            "store": {"url": f"sqlite+aiosqlite:///{db}"},
            "backend": {"kind": "echo", "echo": {"word_delay_seconds": word_delay}},
            "bot": {"rate_limit": {"enabled": False}, "shutdown_grace_seconds": 0},
            "connectors": {
                "slack": {
                    "bot_token": "${SLACK_BOT_TOKEN}",
                    "signing_secret": "${SLACK_SIGNING_SECRET}",
                    "api_base_url": fake.base_url,
                    "port": 0,
                    **slack,
                }
            },
        },
        environ={
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_APP_TOKEN": fake.app_token,
        },
    )


def message(
    text: str,
    *,
    user: str = "U1",
    channel: str = "D1",
    channel_type: str = "im",
    ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message`` event (a DM by default)."""
    return {
        "type": "message",
        "user": user,
        "text": text,
        "channel": channel,
        "channel_type": channel_type,
        "ts": ts or new_ts(),
        **extra,
    }


def mention(text: str, *, user: str = "U1", channel: str = "C1", **extra: Any) -> dict[str, Any]:
    """An ``app_mention`` event in a channel."""
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {text}",
        "channel": channel,
        "ts": extra.pop("ts", None) or new_ts(),
        **extra,
    }


def callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """The Events API envelope around ``event``."""
    return {
        "token": "legacy",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_seq):08d}",
        "event_time": int(time.time()),
    }


@dataclass
class SlackHarness:
    """A started ``Bot`` whose Slack connector serves HTTP and calls the fake Slack."""

    bot: Bot
    connector: SlackConnector
    fake: FakeSlack
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.connector.port}{self.connector.config.path}"

    async def post_raw(
        self, body: str, headers: dict[str, str], content_type: str = "application/json"
    ) -> tuple[int, str]:
        async with self.http.post(
            self.url, data=body.encode(), headers={"Content-Type": content_type, **headers}
        ) as resp:
            return resp.status, await resp.text()

    async def post_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        secret: str = SECRET,
    ) -> tuple[int, str]:
        """Post a signed Events API request, as Slack does."""
        body = json.dumps(callback(event, event_id))
        headers = signed_headers(secret, body)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post_raw(body, headers)

    async def click(
        self, posted: FakeMessage, index: int, user: str = "U1", action_ts: str | None = None
    ) -> tuple[int, str]:
        """Click button ``index`` of a message the bot posted (signed interactivity)."""
        body = urlencode({"payload": json.dumps(click_payload(posted, index, user, action_ts))})
        return await self.post_raw(
            body, signed_headers(SECRET, body), "application/x-www-form-urlencoded"
        )

    async def reply_failed(self, key: str = "D1", limit_s: float = 30.0) -> None:
        """Wait until conversation ``key`` holds the customer's message and the bot's
        reply to it, stored as failed."""
        async with asyncio.timeout(limit_s):
            while True:
                history = await self.bot.history("slack", key)
                if len(history) == 2 and history[1].status == "failed":
                    return
                await asyncio.sleep(0.05)

    async def reply_in(
        self, channel: str, thread_ts: str | None, text: str, limit_s: float = 30.0
    ) -> FakeMessage:
        """Wait until a bot message in the thread shows exactly ``text``."""

        def found() -> bool:
            return any(m.text == text for m in self.fake.thread(channel, thread_ts))

        await self.fake.wait_until(found, limit_s)
        return next(m for m in self.fake.thread(channel, thread_ts) if m.text == text)


def click_payload(
    posted: FakeMessage, index: int, user: str = "U1", action_ts: str | None = None
) -> dict[str, Any]:
    """The ``block_actions`` payload Slack sends when button ``index`` is clicked."""
    assert posted.blocks is not None
    button = posted.blocks[1]["elements"][index]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "ann", "team_id": "T0FAKE"},
        "team": {"id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "container": {
            "type": "message",
            "message_ts": posted.ts,
            "channel_id": posted.channel,
            "is_ephemeral": False,
            "thread_ts": posted.thread_ts,
        },
        "trigger_id": "1.2.abc",
        "channel": {"id": posted.channel, "name": "directmessage"},
        "message": {"ts": posted.ts, "thread_ts": posted.thread_ts, "text": posted.text},
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": posted.blocks[1]["block_id"],
                "value": button["value"],
                "type": "button",
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    return payload


class SlowBackend(ScriptBackend):
    """A real ``GenerationBackend`` that takes 10 s before its first word."""

    name = "slow"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.spoke = asyncio.Event()  # its first word is out

    async def generate(self, request: GenerationRequest) -> AsyncIterator[str]:
        self.started.set()
        await asyncio.sleep(10)
        self.spoke.set()
        yield "too late"
