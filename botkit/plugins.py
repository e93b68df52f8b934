"""Plugins: extensions found through the ``botkit.plugins`` entry-point group.

A plugin is a class with a typed ``Config`` (its ``[plugins.NAME]`` TOML section) and
``setup``/``teardown``. ``setup`` receives a ``PluginRegistry`` to add middleware and
handlers; what a plugin registers is tagged with its name, so when it raises later the
error is logged under that name and the conversation gets the fallback reply. A plugin
whose ``setup`` raises is left out (logged) and the bot starts without it.

Example, in a package's ``pyproject.toml``::

    [project.entry-points."botkit.plugins"]
    opening_hours = "my_package.hours:OpeningHours"
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from botkit import _discovery
from botkit.backends.protocol import GenerationBackend
from botkit.config.components import ComponentSpec
from botkit.config.settings import Settings
from botkit.errors import ConfigProblem
from botkit.event_bus import EventBus, Subscriber
from botkit.pipeline.chain import Middleware, Pipeline
from botkit.pipeline.handlers import Handler
from botkit.pipeline.middleware.conversation import LoadConversationMiddleware

if TYPE_CHECKING:
    from botkit.agent_replies import AgentReplies
    from botkit.customer_files import CustomerFiles
    from botkit.store import ConversationStore

__all__ = [
    "Plugin",
    "PluginConfig",
    "PluginManager",
    "PluginRegistry",
    "available_plugins",
]

_log = logging.getLogger("botkit.plugins")

# How long one plugin's teardown may take at the bot's close (its replies are done).
TEARDOWN_S = 10.0


class PluginConfig(BaseModel):
    """Base of every plugin's config section. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


ConfigT = TypeVar("ConfigT", bound=PluginConfig)


class PluginRegistry:
    """What ``Plugin.setup`` gets: registration methods and the bot's services.

    Registrations take effect only when ``setup`` returns without raising.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        store: ConversationStore,
        backend: GenerationBackend,
        events: EventBus | None = None,
        agent_replies: AgentReplies | None = None,
        customer_files: CustomerFiles | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.backend = backend
        # Sends a human agent's message to a conversation's customer (None outside a Bot).
        self.agent_replies = agent_replies
        # Fetches the files customers sent, for agents (None outside a Bot).
        self.customer_files = customer_files
        self.logger = logging.getLogger(f"botkit.plugins.{name}")
        self._events = events
        self._middleware: list[tuple[Middleware, bool]] = []
        self._handlers: list[tuple[Handler, int]] = []
        self._subscribers: list[Subscriber] = []

    def add_middleware(self, middleware: Middleware, *, early: bool = False) -> None:
        """Append ``middleware`` after the built-in middleware and earlier plugins'.

        Args:
            middleware: the middleware.
            early: run it before the core's conversation gate instead (after
                sanitizing, rate limiting and the language middleware), so it also sees
                messages of conversations the bot does not answer: those a human
                handles and closed ones. It must check ``ctx.conversation.status``.
        """
        self._middleware.append((middleware, early))

    def add_handler(self, handler: Handler, *, group: int = 0) -> None:
        """Add ``handler`` to ``group`` (ascending groups; first match per group)."""
        self._handlers.append((handler, group))

    def on_event(self, subscriber: Subscriber) -> None:
        """Call ``subscriber`` with every system event (conversation started/closed,
        handoff requested)."""
        self._subscribers.append(subscriber)

    def apply(self, pipeline: Pipeline) -> None:
        """Commit the registrations to ``pipeline`` under this plugin's name."""
        for middleware, early in self._middleware:
            gate = LoadConversationMiddleware if early else None
            pipeline.add_middleware(middleware, owner=self.name, before=gate)
        for handler, group in self._handlers:
            pipeline.add_handler(handler, group=group, owner=self.name)
        if self._events is not None:
            for subscriber in self._subscribers:
                self._events.subscribe(subscriber, owner=self.name)


class Plugin(Generic[ConfigT]):
    """Base class of plugins.

    Subclasses set ``Config`` to their ``PluginConfig`` subclass and override ``setup``
    (and ``teardown`` if they hold resources).
    """

    Config: ClassVar[type[PluginConfig]] = PluginConfig

    def __init__(self, config: ConfigT, *, name: str) -> None:
        self.config = config
        self.name = name

    def settings_problems(self, settings: Settings) -> list[ConfigProblem]:
        """What makes this plugin's config unusable with the rest of ``settings`` (a
        text missing in ``bot.working_language``), found without setting anything up.

        ``botkit check-config`` lists these with the file's own problems, and ``botkit
        run`` and ``chat`` refuse to start on them, so a mistake that ``setup`` would
        only log (leaving the plugin out) is seen before the bot serves without it.
        """
        return []

    async def setup(self, registry: PluginRegistry) -> None:
        """Register middleware and handlers; open resources."""

    async def teardown(self) -> None:
        """Release resources. Called once at shutdown when ``setup`` succeeded."""


def available_plugins() -> dict[str, str]:
    """Installed plugins: entry-point name to ``module:attribute``."""
    return _discovery.available(_discovery.PLUGINS)


class PluginManager:
    """Instantiates, sets up and tears down the enabled plugins, in config order."""

    def __init__(self, specs: Sequence[ComponentSpec]) -> None:
        self._specs = list(specs)
        self._active: list[Plugin[Any]] = []
        self.failed: dict[str, str] = {}

    @property
    def active(self) -> list[str]:
        """Names of the plugins that set up successfully."""
        return [p.name for p in self._active]

    def get(self, name: str) -> Plugin[Any] | None:
        """The active plugin named ``name`` (None if it is not enabled or failed)."""
        return next((p for p in self._active if p.name == name), None)

    async def setup_all(
        self,
        pipeline: Pipeline,
        *,
        settings: Settings,
        store: ConversationStore,
        backend: GenerationBackend,
        events: EventBus | None = None,
        agent_replies: AgentReplies | None = None,
        customer_files: CustomerFiles | None = None,
    ) -> None:
        """Set up each plugin; one that raises is logged, recorded in ``failed`` and left out."""
        for spec in self._specs:
            registry = PluginRegistry(
                spec.name,
                settings=settings,
                store=store,
                backend=backend,
                events=events,
                agent_replies=agent_replies,
                customer_files=customer_files,
            )
            try:
                plugin: Plugin[Any] = spec.cls(spec.config, name=spec.name)
                await plugin.setup(registry)
            except Exception as exc:
                self.failed[spec.name] = f"{type(exc).__name__}: {exc}"
                _log.error(
                    "plugin %r failed to set up and is disabled: %s: %s",
                    spec.name,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
                continue
            registry.apply(pipeline)
            self._active.append(plugin)
            _log.info("plugin %r enabled", spec.name)

    async def teardown_all(self, *, within_s: float = TEARDOWN_S) -> None:
        """Tear down active plugins in reverse order; errors are logged, not raised. A
        teardown still running after ``within_s`` seconds is cancelled and logged: a
        plugin that hangs there must not keep the bot from stopping."""
        while self._active:
            plugin = self._active.pop()
            deadline = asyncio.timeout(within_s)
            try:
                async with deadline:
                    await plugin.teardown()
            except Exception as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():  # not its own
                    _log.error(
                        "plugin %r did not tear down within %g s; cancelled",
                        plugin.name,
                        within_s,
                    )
                    continue
                _log.error(
                    "plugin %r failed to tear down: %s: %s",
                    plugin.name,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                )
