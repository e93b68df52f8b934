"""Typed settings of the Slack connector (``[connectors.slack]`` in the TOML)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from botkit.config.listen import ListenHost
from botkit.retry import Backoff
from connectors.base import ConnectorConfig

# A member's id: U or W and upper-case letters and digits.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,40}")

__all__ = ["SlackConfig", "SlackRetry"]

# Tokens that are not a bot token, by prefix (a look at the prefix only: the token itself
# is never shown). Any other token that is not a bot's fails at connect (auth.test).
_NOT_BOT_TOKENS = (
    ("xapp-", "an app-level token (xapp-)"),
    ("xoxp-", "a user token (xoxp-): the bot would post as that person"),
    ("xoxe.xoxp-", "a user token (xoxe.xoxp-): the bot would post as that person"),
    ("xoxe.xoxb-", "a rotating token (xoxe.xoxb-), which expires; botkit does not refresh it"),
    ("xoxe-", "a refresh token (xoxe-)"),
)


class SlackRetry(BaseModel):
    """How calls to the Slack Web API are retried.

    Network errors and 5xx answers are retried with exponential backoff
    (``initial_backoff_s`` doubling up to ``max_backoff_s``, each wait less a random
    part of up to half: see ``botkit.retry``) at most ``max_attempts``
    times. A 429 answer is waited out for its ``Retry-After`` and does not count as an
    attempt: bursts are delayed, not lost. ``give_up_after_s`` bounds the whole delivery
    of one message; after it the reply is reported as failed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=100)
    initial_backoff_s: float = Field(default=0.5, gt=0, le=60)
    max_backoff_s: float = Field(default=30.0, gt=0, le=3600)
    give_up_after_s: float = Field(default=300.0, gt=0, le=86_400)

    def backoff(self) -> Backoff:
        """The waits between tries: ``initial_backoff_s`` doubling up to ``max_backoff_s``."""
        return Backoff(self.initial_backoff_s, self.max_backoff_s)


class SlackConfig(ConnectorConfig):
    """Settings of the Slack app.

    Attributes:
        mode: ``"http"`` serves the Events API (and interactivity) on ``host:port`` +
            ``path``; ``"socket"`` connects out over Socket Mode (needs ``app_token``).
        bot_token: the bot token (``xoxb-...``), from ``${VAR}``.
        signing_secret: verifies HTTP requests came from Slack (required in http mode).
        app_token: app-level token (``xapp-...``) with ``connections:write`` (socket mode).
        host / port / path: where the HTTP endpoint listens (http mode).
        answer_other_bots: also answer messages written by other bots (beware of two bots
            answering each other forever). The bot's own messages are always ignored.
        agent_user_ids: Slack user ids (``U0123ABCD``) of your support agents. What
            they write in a customer's thread is stored as an agent's message (with
            their name) and takes the conversation over, instead of being read as the
            customer's; agents still talk to the bot normally in their own DMs.
        thread_replies: in channels, answer a mention in a thread under it (each
            top-level mention then starts its own conversation). Off: mentions are
            answered top-level and the channel is one running conversation, which a
            reply in the thread under one of the bot's answers continues (answered in
            that thread). DMs do not
            depend on it: everything in a DM, its threads included, is one running
            conversation, answered where the customer wrote (top-level or in the thread).
        update_interval_s: shortest time between two edits of a streamed message. 1.5 s
            by default: Slack allows ``chat.update`` about 50 times a minute per
            workspace (Tier 3), and one stream edited every second would spend all of it
            (60/min); at 1.5 s one stream takes 40/min and leaves room for final edits.
        updates_per_minute: the workspace-wide budget of ``chat.update`` calls, shared
            by every channel (a token bucket holding 10 seconds' worth for bursts). A 429
            on ``chat.update`` holds every channel's edits for its ``Retry-After``.
            Progress edits of a streamed reply are skipped when no token is free at
            once; final edits wait for one, within ``retry.give_up_after_s``.
        channel_send_interval_s: shortest time between two messages or edits in one
            channel (Slack allows about one message per second per channel).
        max_message_chars: longer replies are split into several messages, on paragraph
            or sentence boundaries (Slack truncates text far above 4,000 characters).
        typing_indicator: ``"auto"`` shows the "is thinking" status line where Slack has
            one (threads: channel threads and AI-app threads) and a placeholder message
            elsewhere (top-level DMs, or where Slack refuses the status);
            ``"placeholder"`` always posts the placeholder; ``"off"`` shows nothing.
        thinking_text / thinking_status: the placeholder text and the status line.
        streaming: how a streamed reply is shown. ``"auto"`` (the default) uses Slack's
            native streaming (``chat.startStream`` / ``appendStream`` / ``stopStream``)
            where Slack allows it: in a thread, with the "is thinking" status line (not
            a placeholder) as the thinking state, and in channels only when the
            customer's user and team ids are known. Where Slack answers that the
            feature is not available (``unknown_method``, ``feature_not_enabled``...)
            the reply goes out by ``chat.update`` edits, and so do all later ones (it
            is logged once). ``"native"`` tries native streaming for every reply where
            it applies and logs each refusal (the reply still goes out by edits);
            ``"edit"`` always posts and edits.
        request_timeout_s: timeout of one Web API call, every call included. A new
            message (or stream start, or append) that timed out is not tried again: Slack
            may have made it, and a second would show the reply twice.
        retry: retry and backoff of Web API calls.
        user_cache_ttl_s / user_cache_size: ``users.info`` answers are cached this long.
        user_lookup_timeout_s: a slower ``users.info`` is skipped (the message is stored
            without the user's locale rather than acknowledged late).
        max_body_bytes: largest HTTP request body accepted (http mode).
        api_base_url: the Slack Web API; tests point it at a local fake.
    """

    mode: Literal["http", "socket"] = "http"
    bot_token: SecretStr
    # validate_default: their checks run when they are missing too (see below).
    signing_secret: SecretStr | None = Field(default=None, validate_default=True)
    app_token: SecretStr | None = Field(default=None, validate_default=True)
    host: ListenHost = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    path: str = Field(default="/slack/events", pattern=r"^/[A-Za-z0-9/_.-]*$", max_length=200)
    answer_other_bots: bool = False
    thread_replies: bool = True
    agent_user_ids: tuple[str, ...] = ()
    update_interval_s: float = Field(default=1.5, ge=0.05, le=60)
    updates_per_minute: float = Field(default=50.0, ge=1, le=100_000)
    channel_send_interval_s: float = Field(default=1.0, ge=0, le=60)
    max_message_chars: int = Field(default=3900, ge=200, le=4000)
    typing_indicator: Literal["auto", "placeholder", "off"] = "auto"
    thinking_text: str = Field(default="_Thinking…_", min_length=1, max_length=200)
    thinking_status: str = Field(default="is thinking…", min_length=1, max_length=50)
    streaming: Literal["auto", "native", "edit"] = "auto"
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)
    retry: SlackRetry = Field(default_factory=SlackRetry)
    user_cache_ttl_s: float = Field(default=3600.0, ge=0, le=7 * 86_400)
    user_cache_size: int = Field(default=10_000, ge=1, le=10_000_000)
    user_lookup_timeout_s: float = Field(default=2.0, gt=0, le=30)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=16 * 1_048_576)
    api_base_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://")

    def listeners(self) -> dict[str, tuple[str, int]]:
        """What it listens on (``botkit.config.listen``): nothing in socket mode."""
        return {"port": (self.host, self.port)} if self.mode == "http" else {}

    @field_validator("bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if not token.strip():
            raise ValueError("bot_token is empty (set it from ${VAR})")
        for prefix, what in _NOT_BOT_TOKENS:
            if token.startswith(prefix):
                raise ValueError(f"bot_token holds {what}; use the Bot User OAuth Token (xoxb-)")
        return value

    @field_validator("agent_user_ids")
    @classmethod
    def _check_agents(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user in value:
            if not _USER_ID.fullmatch(user):
                raise ValueError(f"{user!r} is not a Slack user id like U0123ABCD")
        return tuple(dict.fromkeys(value))

    # What each mode needs is checked on the key itself (not by a model validator), so
    # a missing one is reported under its own key and along with any other problem.
    # ``mode`` is declared first: it is in ``info.data`` unless it is invalid itself.

    @field_validator("signing_secret")
    @classmethod
    def _check_signing_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if info.data.get("mode") == "http" and (value is None or not value.get_secret_value()):
            raise ValueError("mode 'http' needs signing_secret (set it from ${VAR})")
        return value

    @field_validator("app_token")
    @classmethod
    def _check_app_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if info.data.get("mode") == "socket":
                raise ValueError("mode 'socket' needs app_token (an xapp- token, from ${VAR})")
        elif not value.get_secret_value().startswith("xapp-"):
            raise ValueError("app_token must be an app-level token starting with xapp-")
        return value
