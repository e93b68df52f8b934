"""The typed settings tree one TOML file is validated into.

Every section forbids unknown keys and is frozen: settings are read, never mutated, and
passed explicitly to whatever needs them. Connector and plugin sections stay raw tables
here; each is validated against the ``Config`` class of the component that is enabled
(see ``botkit.config.loader``), because only the installed component knows its keys.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from botkit.config.listen import split_listen
from botkit.language.codes import known_tag
from botkit.language.settings import LanguageSettings
from botkit.store.settings import StoreSettings

__all__ = [
    "BackendSettings",
    "BotSettings",
    "EchoSettings",
    "EngineSettings",
    "LanguageSettings",
    "LoggingSettings",
    "MetricsSettings",
    "OpenAISettings",
    "RateLimitSettings",
    "Section",
    "Settings",
]


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitSettings(Section):
    """Per-contact message rate limit (a token bucket per channel + contact)."""

    enabled: bool = True
    messages: int = Field(default=20, ge=1, le=1_000_000, description="messages allowed per window")
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    reply: str = (
        "You are sending messages faster than I can answer. Please wait a moment and try again."
    )
    # Bounds memory when many distinct contacts write (or someone forges contact ids).
    max_tracked_contacts: int = Field(default=100_000, ge=1, le=100_000_000)


# A reply to a message older than a week helps nobody (and "inf" must fail here, not
# as an overflow when the bot starts).
RESUME_WINDOW_MAX_S = 7 * 24 * 3600.0
# A crashed process's messages become takeable 30 s after its last heartbeat and are
# found by the next 15-s pass, up to ~45 s after they were stored: a shorter window
# would let them expire unseen (botkit/_resume.py, RecoveryTiming).
RESUME_WINDOW_MIN_S = 60.0


class BotSettings(Section):
    """How the bot behaves towards customers."""

    name: str = "botkit"
    working_language: str = Field(default="en", min_length=2, max_length=35)
    system_prompt: str = (
        "You are a friendly and concise customer-service assistant. Answer the customer's "
        "question in a few sentences. If you do not know the answer, say so and offer to "
        "hand the conversation to a human colleague."
    )
    fallback_reply: str = "Sorry, something went wrong on our side. Please try again in a moment."
    busy_reply: str = "We are receiving a lot of messages right now. Please try again in a minute."
    too_long_reply: str = (
        "Your message is too long ({length} characters, the limit is {limit}). "
        "Please shorten it or split it into several messages."
    )
    empty_reply: str = "I can only read text for now. Could you describe it in words?"
    # Telegram's own limit, the lowest a channel lets a customer send in one message:
    # a message the platform took is never "too long" by default.
    max_message_chars: int = Field(default=4096, ge=1, le=1_000_000)
    history_turns: int = Field(default=20, ge=0, le=10_000)
    history_token_budget: int = Field(default=2048, ge=0, le=10_000_000)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=3600)
    # On start, messages stored this recently whose reply a crash interrupted are answered;
    # older ones would arrive too late to help. 0 turns it off.
    resume_unanswered_seconds: float = Field(default=900.0, ge=0, le=RESUME_WINDOW_MAX_S)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @field_validator("working_language")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        # "EN_us" -> "en-US"; a malformed tag, or one naming no language ("zz"), is a problem
        return known_tag(value)

    @field_validator("resume_unanswered_seconds")
    @classmethod
    def _resume_window(cls, value: float) -> float:
        if 0 < value < RESUME_WINDOW_MIN_S:
            raise ValueError(
                f"must be 0 (off) or at least {RESUME_WINDOW_MIN_S:g}: a crashed process's "
                "messages are taken over only up to ~45 s after they were stored (its "
                "heartbeat must go stale first), so a shorter window would drop them"
            )
        return value


class EchoSettings(Section):
    """The deterministic echo backend (tests, demos without a model)."""

    prefix: str = "echo: "
    word_delay_seconds: float = Field(default=0.0, ge=0, le=10)


# The engine's sampling bounds (engine.sampling: temperature is 0 or in [min, max]). They
# are repeated, not imported, because botkit must not import the engine (torch) at import
# time; tests/engine/test_sampling_validation.py checks that they match.
ENGINE_MIN_TEMPERATURE = 0.01
ENGINE_MAX_TEMPERATURE = 100.0
ENGINE_MIN_REPETITION_PENALTY = 0.01
ENGINE_MAX_REPETITION_PENALTY = 100.0


class EngineSettings(Section):
    """The local inference engine, read by ``botkit.backends.local_engine``.

    The sampling defaults accept exactly what ``engine.SamplingParams`` accepts, so a bad
    value fails ``botkit check-config`` (naming its key) instead of every reply.
    """

    model: str = Field(default="smollm2", min_length=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    max_new_tokens: int = Field(default=256, ge=1, le=1_000_000)
    # Measured on the default model, SmolLM2-135M, answering from knowledge pages (4
    # questions x 3 seeds): a repetition penalty of 1.1 penalizes the prompt's tokens,
    # the very facts a reply should repeat: 1 of 12 replies had the fact at temperature
    # 0.2, 0.3 or 0.7; without it 8 of 12 at 0.2 and 0.3 (7 at 0.7).
    temperature: float = Field(default=0.3, ge=0, le=ENGINE_MAX_TEMPERATURE, allow_inf_nan=False)
    top_p: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    # Any k >= the vocabulary means "no limit"; 0 disables it too.
    top_k: int = Field(default=50, ge=0, le=10_000_000)
    repetition_penalty: float = Field(
        default=1.0,
        ge=ENGINE_MIN_REPETITION_PENALTY,
        le=ENGINE_MAX_REPETITION_PENALTY,
        allow_inf_nan=False,
    )
    queue_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # None: the engine sizes these from the device and its free memory.
    max_num_seqs: int | None = Field(default=None, ge=1, le=65_536)
    kv_cache_blocks: int | None = Field(default=None, ge=1, le=100_000_000)
    # Share of the GPU's memory the chat engine may fill (its KV cache takes what its
    # model leaves); lower it when a translation model shares the GPU.
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    # On a GPU: replay CUDA graphs for decode steps and small prefills (captured at
    # startup); off: every step eagerly.
    cuda_graphs: bool = True
    # With CUDA graphs: queue the next decode step on the GPU before reading this one's
    # tokens, so the host's work between steps overlaps the GPU's.
    overlap_steps: bool = True

    @field_validator("temperature")
    @classmethod
    def _greedy_or_sampling_temperature(cls, value: float) -> float:
        # Between 0 and 0.01 the engine's float32 logits / temperature can overflow.
        if 0 < value < ENGINE_MIN_TEMPERATURE:
            raise ValueError(
                f"must be 0 (greedy) or at least {ENGINE_MIN_TEMPERATURE:g}, got {value:g}"
            )
        return value


class OpenAISettings(Section):
    """An OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI...), read by
    ``botkit.backends.openai_compat``.

    ``top_k`` and ``repetition_penalty`` are not part of OpenAI's API: they are sent (as
    extra body fields) only when set, because OpenAI itself rejects unknown fields. vLLM
    and SGLang read both; llama.cpp's server reads ``top_k`` (its repetition penalty is
    ``repeat_penalty``, not sent); Ollama's ``/v1`` ignores both.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    # Local servers usually need none (the placeholder "none" is sent then, which they
    # ignore); OpenAI and gateways do ("${OPENAI_API_KEY}").
    api_key: SecretStr | None = None
    model: str = ""
    max_new_tokens: int = Field(default=256, ge=1, le=1_000_000)
    # The request field max_new_tokens goes in: OpenAI's newer models refuse max_tokens
    # and want max_completion_tokens, which other servers may not know. "auto":
    # max_completion_tokens for api.openai.com, max_tokens elsewhere.
    max_tokens_field: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
    # "server": never sent, not even the translator's 0 (OpenAI's reasoning models refuse
    # any temperature but their own), so the server's default applies.
    temperature: float | Literal["server"] = 0.7
    top_p: float | Literal["server"] = 0.9
    top_k: int | None = Field(default=None, ge=0, le=10_000_000)
    repetition_penalty: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False)
    # Longest wait for the server to connect, answer, or send the next part of a reply.
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Retries (with backoff) on connection errors, 408/409/429/5xx, before a reply starts.
    max_retries: int = Field(default=2, ge=0, le=10)
    # Replies requested at once; more wait up to queue_timeout_seconds, then get busy_reply.
    max_concurrent_requests: int = Field(default=32, ge=1, le=100_000)
    queue_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The server's context in tokens (prompt + reply), e.g. llama.cpp's --ctx-size or
    # vLLM's --max-model-len. When set, the history is shortened to fit (by an estimate
    # that counts a CJK character as a token) and a message too long for it alone gets
    # too_long_reply. Unset: the whole history is sent; a request the server refuses as
    # too long is retried once with the history cut to fit.
    context_tokens: int | None = Field(default=None, ge=64, le=100_000_000)

    @model_validator(mode="after")
    def _context_holds_a_reply(self) -> OpenAISettings:
        if self.context_tokens is not None and self.context_tokens <= self.max_new_tokens:
            raise ValueError(
                f"context_tokens ({self.context_tokens}) must be more than max_new_tokens "
                f"({self.max_new_tokens}): the prompt shares the context with the reply"
            )
        return self

    @field_validator("temperature")
    @classmethod
    def _check_temperature(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and not 0 <= value <= 2:  # NaN fails too
            raise ValueError('must be between 0 and 2, or "server"')
        return value

    @field_validator("top_p")
    @classmethod
    def _check_top_p(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and not 0 < value <= 1:
            raise ValueError('must be above 0 and at most 1, or "server"')
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        try:
            parts.port  # noqa: B018 (raises on a port out of range)
        except ValueError:
            raise ValueError("has an invalid port") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.strip().rstrip("/")


class BackendSettings(Section):
    """Which generation backend answers, and its settings."""

    kind: Literal["echo", "engine", "openai", "auto"] = "auto"
    echo: EchoSettings = Field(default_factory=EchoSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)

    @model_validator(mode="after")
    def _openai_needs_a_model(self) -> BackendSettings:
        if self.kind == "openai" and not self.openai.model.strip():
            raise ValueError('kind = "openai" needs backend.openai.model (the served model id)')
        return self


class LoggingSettings(Section):
    """Log level and format (one JSON object per line when ``json`` is true)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    json_format: bool = Field(default=False, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class MetricsSettings(Section):
    """Prometheus metrics at ``http://<listen>/metrics`` (see docs/operations.md).

    ``listen`` is ``host:port``; empty (the default) serves none. The metrics name
    channels and counts, never customers' text or ids, but keep the port on loopback or
    a private network all the same.
    """

    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        value = value.strip()
        if value:
            split_listen(value)
        return value


class Settings(Section):
    """The root of the settings tree.

    ``connectors`` and ``plugins`` map a component name to its raw TOML table; a
    component is enabled when its table is present and ``enabled`` is not false.
    """

    bot: BotSettings = Field(default_factory=BotSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    backend: BackendSettings = Field(default_factory=BackendSettings)
    language: LanguageSettings = Field(default_factory=LanguageSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    # Raw tables may hold expanded ${VAR} secrets (tokens) until each component's own
    # config types them as secrets: kept out of repr so printing settings never shows them.
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)

    # Values substituted from the environment; the log formatter redacts them.
    _secret_values: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def secret_values(self) -> frozenset[str]:
        """Strings that came from ``${VAR}`` references (redacted from logs)."""
        return self._secret_values

    def with_secret_values(self, values: frozenset[str]) -> Settings:
        """Return a copy that remembers ``values`` as secrets (used by the loader)."""
        clone = self.model_copy()
        clone._secret_values = values
        return clone
