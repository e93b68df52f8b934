"""The ``[plugins.handoff]`` section."""

from __future__ import annotations

import re
from string import Formatter
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from botkit.agent_names import agent_name
from botkit.config.listen import split_listen
from botkit.handoff.hours import OfficeHours
from botkit.language.keywords import check_keyword
from botkit.language.tags import try_normalize
from botkit.language.words import search_terms
from botkit.plugins import PluginConfig

__all__ = ["HandoffConfig"]

# A chat command as Telegram defines them (and Slack/web users type them): a slash and
# 1-32 letters, digits or underscores.
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}")


def _command(value: str) -> str:
    value = value.strip()
    if not _COMMAND.fullmatch(value):
        raise ValueError(f"{value!r} is not a command like '/human' (a slash, 1-32 letters)")
    return value.lower()


def _phrase(value: str) -> str:
    phrase = " ".join(value.casefold().split())
    if not phrase:
        raise ValueError("a keyword must not be empty")
    if len(phrase) > 100:
        raise ValueError("a keyword must be at most 100 characters")
    if search_terms(phrase):  # one with no letters or digits (🆘) is looked for as written
        check_keyword(phrase)
    return phrase


def _language_key(value: str) -> str:
    tag = try_normalize(value)
    if tag is None:
        raise ValueError(f"{value!r} is not a language tag")
    return tag


def _only_placeholder(text: str, name: str, *, required: bool) -> None:
    """``text`` uses no placeholder but ``{name}``, as it is (no format, attribute or
    index: "{opens.date}" would fail at the customer's message, not here)."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in Formatter().parse(text) if f is not None]
    except ValueError as exc:  # a lone brace
        raise ValueError(f"{exc} (write a literal brace doubled: {{{{ }}}})") from None
    other = [f for f, spec, conv in fields if (f, spec, conv) != (name, "", None)]
    if other:
        raise ValueError(
            f"may use only the {{{name}}} placeholder, as it is, not {{{other[0]}}} "
            "(write a literal brace doubled: {{ }})"
        )
    if required and not fields:
        raise ValueError(f"must contain {{{name}}}")


class HandoffConfig(PluginConfig):
    """Settings of the hand-off plugin.

    Attributes:
        commands: messages that hand the conversation to a human. A message triggers
            only when it *is* the command (surrounding spaces, any letter case and a
            Telegram-style ``@botname`` suffix allowed), never when it contains one.
        keywords: phrases that also hand off, grouped by language for readability
            (all groups are checked for every message: short messages are where the
            language detector is least sure). A phrase matches as whole words,
            ignoring case and extra spaces, in messages of at most
            ``keyword_max_chars`` characters.
        keyword_max_chars: longer messages are never matched against keywords (a long
            question that mentions "a human" is a question, not a request).
        replies: confirmation texts per language, over the built-in ones (en, es, fr,
            de, pt, it); languages without one get English.
        return_command: lets the customer give the conversation back to the bot while
            it waits for or is with a human; "" disables it.
        return_replies: texts confirming the return, per language, over the built-in
            ones.
        webhook_url: where to POST each ``HandoffRequested`` event as JSON (the agents'
            tool); a secret because such URLs often carry a token.
        webhook_timeout_seconds: total time one webhook call may take.
        api_listen: ``host:port`` where the agent API listens (``botkit.handoff.api``:
            list hand-offs, read a conversation, send an agent's message, give the
            conversation back to the bot); None (the default) runs no API. Keep it on
            loopback or a private network, behind TLS when it leaves the machine.
        api_token: the bearer token agents' tools must send (at least 24 characters of
            letters, digits and ``-._~+/``); with ``api_listen``, this or ``agents``
            is required. A tool with it names the agent in each message it sends.
        agents: each agent's own token, by their name (the same rules as
            ``api_token``): they sign in to the inbox, or call the API, with it, and
            what they send is stored under that name, whatever the request says.
            Removing an agent here (and restarting) locks them out.
        inbox: serve the agents' inbox, a web page answering hand-offs through the
            API, at ``/inbox/`` on ``api_listen``.
        hours: office hours (``botkit.handoff.hours.OfficeHours``); None (the default)
            means a colleague is always there.
        offline_replies: texts for a hand-off request outside ``hours``, per language,
            over the built-in ones (which depend on ``hours.outside``); ``{opens}`` is
            replaced by when the team is next there.
        return_hints: the sentence after a hand-off confirmation naming the return
            command (``{command}``), per language, over the built-in ones; add one for
            each language you add to ``replies``.
    """

    commands: tuple[str, ...] = ("/human", "/agent")
    keywords: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    keyword_max_chars: int = Field(default=200, ge=1, le=4000)
    replies: dict[str, str] = Field(default_factory=dict)
    return_command: str = "/bot"
    return_replies: dict[str, str] = Field(default_factory=dict)
    webhook_url: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    api_listen: str | None = None
    api_token: SecretStr | None = None
    agents: dict[str, SecretStr] = Field(default_factory=dict)
    inbox: bool = True
    hours: OfficeHours | None = None
    offline_replies: dict[str, str] = Field(default_factory=dict)
    return_hints: dict[str, str] = Field(default_factory=dict)

    @field_validator("commands")
    @classmethod
    def _check_commands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_command(c) for c in value))

    @field_validator("return_command")
    @classmethod
    def _check_return(cls, value: str) -> str:
        return _command(value) if value.strip() else ""

    @field_validator("keywords")
    @classmethod
    def _check_keywords(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {_language_key(k): tuple(_phrase(p) for p in v) for k, v in value.items()}

    @field_validator("replies", "return_replies", "offline_replies", "return_hints")
    @classmethod
    def _check_replies(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            if not text.strip():
                raise ValueError("a reply must not be empty")
        return {_language_key(k): v for k, v in value.items()}

    @field_validator("offline_replies")
    @classmethod
    def _check_opens(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            _only_placeholder(text, "opens", required=False)
        return value

    @field_validator("return_hints")
    @classmethod
    def _check_command(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            _only_placeholder(text, "command", required=True)
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")  # the URL is not echoed
        return value

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: dict[str, str] = {}
        for number, (name, token) in enumerate(value.items(), start=1):
            # A table written the wrong way round has tokens for names: those are
            # never echoed, only the entry's place in the table.
            shown = (
                f"agent {number}"
                if _TOKEN.fullmatch(name.strip()) and len(name.strip()) >= MIN_TOKEN_CHARS
                else f"agent {number} ({name[:40]!r})"
            )
            try:
                clean = agent_name(name)
            except ValueError as exc:
                raise ValueError(f"agents: {shown}: {exc}") from None
            if clean.casefold() in seen:
                raise ValueError(f"agents: {shown} has the name of {seen[clean.casefold()]}")
            seen[clean.casefold()] = shown
            secret = token.get_secret_value()
            if shown == f"agent {number}" and len(secret) < MIN_TOKEN_CHARS:
                raise ValueError(
                    f"agents: agent {number} looks written the wrong way round: the table "
                    'is name = token, e.g. Ana = "${BOTKIT_AGENT_ANA}"'
                )
            _check_token(secret, f"agents: {shown}: the token")
        return {agent_name(name): token for name, token in value.items()}

    @field_validator("api_token")
    @classmethod
    def _check_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A field check, so it is reported under its own key, with the others at once.
        if value is not None:
            _check_token(value.get_secret_value(), "api_token")
        return value

    @field_validator("api_listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _check_distinct(self) -> HandoffConfig:
        if self.return_command and self.return_command in self.commands:
            raise ValueError("return_command must differ from the hand-off commands")
        tokens = [t.get_secret_value() for t in self.agents.values()]
        if self.api_token is not None:
            tokens.append(self.api_token.get_secret_value())
        if len(set(tokens)) < len(tokens):
            raise ValueError("every agent (and api_token) needs a token of its own")
        if self.api_listen is not None and not tokens:
            raise ValueError(
                "api_listen needs api_token or agents, each token at least "
                f'{MIN_TOKEN_CHARS} characters (e.g. api_token = "${{BOTKIT_AGENT_TOKEN}}")'
            )
        return self

    @property
    def api_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the agent API, or None when it is off."""
        return None if self.api_listen is None else split_listen(self.api_listen)

    def listeners(self) -> dict[str, tuple[str, int]]:
        """What it listens on (``botkit.config.listen``)."""
        address = self.api_address
        return {} if address is None else {"api_listen": address}


MIN_TOKEN_CHARS = 24
# RFC 6750 b64token: what every HTTP client can put in an Authorization header as is.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def _check_token(token: str, what: str) -> None:
    """``token`` is a usable bearer token; the value itself is never echoed."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{what} must be at least {MIN_TOKEN_CHARS} characters")
    if not _TOKEN.fullmatch(token):
        raise ValueError(
            f"{what} may hold only letters, digits and -._~+/ (an RFC 6750 bearer "
            "token; a secret file's trailing newline counts too)"
        )
