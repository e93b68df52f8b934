"""Typed settings of the Telegram connector (``[connectors.telegram]`` in the TOML)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from botkit.config.listen import ListenHost
from botkit.config.problems import problem_at
from botkit.retry import Backoff
from connectors.base import ConnectorConfig

__all__ = [
    "DEFAULT_GROUP_COMMANDS",
    "FloodLimits",
    "RetryPolicy",
    "TelegramConfig",
    "WebhookConfig",
    "command_names",
]


def command_names(commands: Iterable[str]) -> frozenset[str]:
    """Commands ("/order") as the names ``updates.classify`` compares (no "/",
    case-folded)."""
    return frozenset(c[1:].casefold() for c in commands)


# BotFather tokens are "<bot id>:<35 url-safe characters>"; the bounds are loose so a
# future format still passes, while a pasted placeholder or a quoted ${VAR} does not.
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,200}$")
# Telegram's rule for setWebhook(secret_token=...): 1-256 of A-Z a-z 0-9 _ -.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_LANG_KEY = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_WEBHOOK_PORTS = {None, 443, 80, 88, 8443}  # None: the scheme's own
_BARE_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}$")
# The language switch and the hand-off plugin's default commands.
DEFAULT_GROUP_COMMANDS = ("/lang", "/human", "/agent", "/bot")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloodLimits(_Section):
    """Telegram's (approximate, undocumented) flood limits the send queue respects.

    Attributes:
        per_chat_interval_s: least time between two messages or edits in one chat.
        group_max_messages / group_window_s: at most this many per window in a group.
        global_per_second: messages per second over all chats.
        max_retry_after_s: a reply whose RetryAfter waits add up to more than this is
            given up (recorded as failed) instead of blocking its chat.
    """

    per_chat_interval_s: float = Field(default=1.0, ge=0, le=60)
    group_max_messages: int = Field(default=20, ge=1, le=10_000)
    group_window_s: float = Field(default=60.0, gt=0, le=3600)
    global_per_second: int = Field(default=30, ge=1, le=10_000)
    max_retry_after_s: float = Field(default=120.0, ge=0, le=86_400)


class RetryPolicy(_Section):
    """Retries of transient network failures (timeouts, 5xx) with exponential backoff.

    The keys and bounds differ from Slack's ``SlackRetry`` (``attempts`` here,
    ``max_attempts`` there) and stay so: they are what operators' TOML files say. Both
    become the same ``botkit.retry.Backoff`` (equal jitter).
    """

    attempts: int = Field(default=4, ge=1, le=20, description="tries in all, first included")
    initial_backoff_s: float = Field(default=0.5, ge=0, le=60)
    max_backoff_s: float = Field(default=15.0, ge=0, le=600)

    def backoff(self) -> Backoff:
        """The waits between tries: ``initial_backoff_s`` doubling up to ``max_backoff_s``."""
        return Backoff(self.initial_backoff_s, self.max_backoff_s)


class WebhookConfig(_Section):
    """Webhook transport (``mode = "webhook"``).

    Attributes:
        url: the public HTTPS URL Telegram posts updates to (a reverse proxy forwards it
            to ``host:port`` + ``path``). Plain http is accepted only for loopback hosts;
            its port must be one Telegram posts to: 443 (default), 80, 88 or 8443.
        secret_token: sent back by Telegram in ``X-Telegram-Bot-Api-Secret-Token``;
            16-256 characters of ``A-Z a-z 0-9 _ -``, from ``${VAR}``.
        host / port / path: where this process serves the webhook route.
        max_body_bytes: largest update body accepted.
        max_connections: concurrent connections Telegram may open (1-100).
    """

    url: str | None = None
    secret_token: SecretStr | None = None
    host: ListenHost = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)
    path: str = "/telegram/webhook"
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=16_777_216)
    max_connections: int = Field(default=40, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an https:// URL")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError("Telegram only posts to https:// URLs")
        # setWebhook refuses any other port; caught here, not when the bot starts.
        if parts.hostname not in _LOOPBACK and parts.port not in _WEBHOOK_PORTS:
            raise ValueError("Telegram only posts to ports 443, 80, 88 and 8443")
        return value

    @field_validator("secret_token")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET.match(value.get_secret_value()):
            raise ValueError("secret_token must be 16-256 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not re.match(r"^/[A-Za-z0-9_./-]{0,200}$", value) or ".." in value:
            raise ValueError("path must start with / and use only A-Z a-z 0-9 _ . - /")
        return value


class TelegramConfig(ConnectorConfig):
    """Settings of the Telegram connector.

    Attributes:
        token: the bot token from BotFather; always ``"${VAR}"`` in the TOML.
        mode: ``"polling"`` (default, no public URL needed) or ``"webhook"``.
        webhook: the webhook settings (needed in webhook mode).
        group_replies: when to answer in groups: ``"mention_or_reply"`` (the bot is
            @mentioned or its message is replied to), ``"mention"``, ``"all"`` or
            ``"off"`` (ignore groups). Private chats are always answered.
        base_url / base_file_url: Bot API endpoints (a local Bot API server, tests);
            the token is appended, or replaces ``{token}``.
        poll_timeout_s: long-polling timeout of ``getUpdates``, 1-50 seconds. A call
            returns as soon as an update arrives, so a long timeout never delays
            replies; 0 (short polling) is refused: it would call Telegram non-stop.
        poll_limit: most updates fetched at once.
        streaming: how a reply is shown while it is written. ``"auto"`` (default):
            in private chats as a live draft (``sendMessageDraft``), sent as messages
            when complete; in groups, where drafts do not exist, as a message edited
            as it grows. A Bot API server without drafts (an older local one), or a
            chat that refuses them, gets edits, learned on the first refusal and
            logged once. ``"draft"``: the same, but drafts are tried on every reply
            and each refusal is logged. ``"edit"``: edits everywhere.
        edit_interval_s: a streamed answer's draft or message is updated at most once
            per this interval (drafts count against the same per-chat flood limit).
        typing_interval_s: how often the ``typing`` action is repeated while the model
            works (Telegram shows it for about 5 seconds).
        request_timeout_s: connect/read/write timeout of one API call.
        flood / retry: send-queue limits and network retries.
        shutdown_grace_s: on disconnect, how long replies being sent may finish.
        group_commands: the bot's own slash commands (besides ``/start`` and ``/help``),
            taken in a group without ``@botname`` when ``group_replies`` is "mention"
            or "mention_or_reply"; any other bare ``/command`` there is for another
            bot and ignored. Add the hand-off plugin's ``commands`` and
            ``return_command`` and the language ``switch_command`` when they are not
            the defaults. ``/any@botname`` is always the bot's.
        local_reply_interval_s: a chat (topic) gets the ``/start`` greeting or the
            ``/help`` text at most once per this interval: they are the connector's
            own answers, outside ``[bot.rate_limit]``, and eight ``/start`` in a
            group must not post eight greetings. 0: no limit.
        link_previews: whether Telegram shows a preview of a URL in the bot's
            messages. Off by default: a customer, or a prompt-injected model, could
            otherwise make the bot post any site with a rich preview.
        greeting / help / unsupported: per-language overrides (keys like ``"es"``,
            ``"pt-br"``) of the built-in ``/start``, ``/help`` and "I can only read
            text" messages.
    """

    token: SecretStr
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookConfig = WebhookConfig()
    group_replies: Literal["mention_or_reply", "mention", "all", "off"] = "mention_or_reply"
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    poll_timeout_s: int = Field(default=30, le=50)
    poll_limit: int = Field(default=100, ge=1, le=100)
    streaming: Literal["auto", "draft", "edit"] = "auto"
    edit_interval_s: float = Field(default=1.0, ge=0, le=60)
    typing_interval_s: float = Field(default=4.0, gt=0, le=60)
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)
    flood: FloodLimits = FloodLimits()
    retry: RetryPolicy = RetryPolicy()
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=300)
    group_commands: tuple[str, ...] = DEFAULT_GROUP_COMMANDS
    local_reply_interval_s: float = Field(default=30.0, ge=0, le=86_400)
    link_previews: bool = False
    greeting: dict[str, str] = Field(default_factory=dict)
    help: dict[str, str] = Field(default_factory=dict)
    unsupported: dict[str, str] = Field(default_factory=dict)

    def listeners(self) -> dict[str, tuple[str, int]]:
        """What it listens on (``botkit.config.listen``): nothing when polling."""
        if self.mode != "webhook":
            return {}
        return {"webhook.port": (self.webhook.host, self.webhook.port)}

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        # The messages never repeat the value: it is a secret.
        if not value.get_secret_value():
            raise ValueError("token is empty: set the variable holding the @BotFather token")
        if not _TOKEN.match(value.get_secret_value()):
            raise ValueError("token must look like '123456789:AA...' (from @BotFather)")
        return value

    @field_validator("poll_timeout_s")
    @classmethod
    def _check_poll_timeout(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                "must be at least 1 second: Telegram answers a long poll as soon as an "
                "update arrives, so replies are not delayed, while 0 (short polling) "
                "would call getUpdates non-stop"
            )
        return value

    @field_validator("base_url", "base_file_url")
    @classmethod
    def _check_base(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("group_commands")
    @classmethod
    def _check_commands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for command in value:
            if not _BARE_COMMAND.match(command):
                raise ValueError(f"{command!r} is not a command like '/human'")
        return value

    def group_command_names(self) -> frozenset[str]:
        """``group_commands`` as the names ``updates.classify`` compares (no "/",
        case-folded)."""
        return command_names(self.group_commands)

    @field_validator("greeting", "help", "unsupported")
    @classmethod
    def _check_texts(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, text in value.items():
            lang = key.strip().lower().replace("_", "-")
            if not _LANG_KEY.match(lang):
                raise ValueError(f"{key!r} is not a language tag like 'es' or 'pt-br'")
            if not text.strip() or len(text) > 4096:
                raise ValueError(f"the {key!r} text must have 1-4096 characters")
            out[lang] = text
        return out

    @model_validator(mode="after")
    def _check_mode(self) -> TelegramConfig:
        # Reported under the missing key (connectors.telegram.webhook.url), not the table.
        if self.mode == "webhook":
            if self.webhook.url is None:
                raise problem_at(
                    type(self), ("webhook", "url"), "webhook mode needs it (the public https URL)"
                )
            if self.webhook.secret_token is None:
                raise problem_at(
                    type(self), ("webhook", "secret_token"), "webhook mode needs it (from ${VAR})"
                )
        return self
