"""The hand-off plugin: the customer asks for a human, or gives the conversation back.

* A handler in an early group (before the language switch and generation) recognizes a
  hand-off command or keyword in a conversation the bot answers and hands it over
  through the plugin's ``HandoffDesk`` (``botkit.handoff.desk``): ``ctx.hand_off``
  (status ``waiting_human``, ``HandoffRequested`` published) and a confirmation in the
  customer's language; outside office hours (``hours``) the customer is told when a
  colleague will be there, or the bot keeps the conversation. A middleware puts the
  desk in every message's state, so other plugins' hand-offs (an intent, a bad rating)
  follow the same rules.
* The core's conversation gate stops the pipeline for conversations a human handles,
  so no handler would ever see the return command there. It is handled by middleware
  registered ``early`` (ahead of that gate): it sets the status back to ``bot`` and
  confirms; every other message in such a conversation passes on to the gate
  (stored for the agent, not answered).
* With ``webhook_url``, every ``HandoffRequested`` (also those other plugins cause) is
  POSTed to the agents' tool, and so is each ``HandoffReleased``: the customer's return
  command, or an agent's ``release`` through the API (the command line's ``botkit
  handoff release`` runs outside the bot and tells nobody).
* With ``api_listen``, the agents' tool answers through the agent API
  (``botkit.handoff.api``): the agent's messages reach the customer on their channel.
  The same server has the agents' inbox (``botkit.handoff.inbox``), a web page that
  answers through that API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from botkit.handoff import texts
from botkit.handoff.api import AgentApi
from botkit.handoff.config import HandoffConfig
from botkit.handoff.desk import HandoffDesk, ProvideDesk, confirm
from botkit.handoff.matching import CommandMatcher, KeywordMatcher
from botkit.handoff.webhook import HandoffReleased, WebhookNotifier
from botkit.pipeline import Context, Handler, Next, StopPropagation
from botkit.plugins import Plugin, PluginRegistry
from botkit.store.records import ConversationStatus

# Told of each release (the plugin's webhook); a no-op without one.
OnRelease = Callable[[HandoffReleased], Awaitable[None]]


async def _nobody(event: HandoffReleased) -> None:
    return None


__all__ = ["HANDOFF_GROUP", "HandoffHandler", "HandoffPlugin", "ReturnToBotMiddleware"]

# Before the language switch handler (-100) and any default-group plugin handler.
HANDOFF_GROUP = -200

_HUMAN = frozenset({ConversationStatus.WAITING_HUMAN, ConversationStatus.WITH_HUMAN})


class HandoffHandler(Handler):
    """Hands the conversation to a human on a command or keyword."""

    def __init__(self, config: HandoffConfig) -> None:
        self.config = config
        self.commands = CommandMatcher(config.commands)
        self.keywords = KeywordMatcher(
            (p for phrases in config.keywords.values() for p in phrases),
            max_chars=config.keyword_max_chars,
        )
        self.desk = HandoffDesk(config)

    def reason(self, text: str) -> str | None:
        """Why ``text`` asks for a human ("command /human", "keyword ..."), or None."""
        command = self.commands.match(text)
        if command is not None:
            return f"customer sent {command}"
        phrase = self.keywords.match(text)
        return None if phrase is None else f"customer wrote {phrase!r}"

    def check(self, ctx: Context) -> bool:
        return (
            not ctx.too_long
            and ctx.conversation.status == ConversationStatus.BOT
            and self.reason(ctx.text) is not None
        )

    async def handle(self, ctx: Context) -> None:
        await self.desk.hand_off(ctx, self.reason(ctx.text) or "customer asked")
        raise StopPropagation  # nothing later may answer in the bot's name


class ReturnToBotMiddleware:
    """Gives a human-handled conversation back to the bot on the return command."""

    def __init__(self, config: HandoffConfig, on_release: OnRelease = _nobody) -> None:
        self.matcher = CommandMatcher([config.return_command])
        self.replies = {**texts.RETURN_REPLIES, **config.return_replies}
        self.on_release = on_release

    async def __call__(self, ctx: Context, next: Next) -> None:
        if (
            ctx.conversation.status in _HUMAN
            and not ctx.too_long
            and self.matcher.match(ctx.text) is not None
        ):
            ctx.conversation = await ctx.store.set_conversation_status(
                ctx.conversation.id, ConversationStatus.BOT
            )
            ctx.logger.info("%s: customer gave the conversation back to the bot", ctx.describe())
            confirm(ctx, self.replies, None, "")
            await self.on_release(
                HandoffReleased(ctx.message.channel, ctx.message.conversation_key)
            )
            return  # the command itself is not a question for the model
        await next()


class HandoffPlugin(Plugin[HandoffConfig]):
    """The built-in ``handoff`` plugin (see the module docstring)."""

    Config = HandoffConfig

    def __init__(self, config: HandoffConfig, *, name: str) -> None:
        super().__init__(config, name=name)
        self._webhook: WebhookNotifier | None = None
        self.api: AgentApi | None = None

    async def setup(self, registry: PluginRegistry) -> None:
        config = self.config
        handler = HandoffHandler(config)
        registry.add_handler(handler, group=HANDOFF_GROUP)
        registry.add_middleware(ProvideDesk(handler.desk))
        on_release: OnRelease = _nobody
        if config.webhook_url is not None:
            self._webhook = WebhookNotifier(
                config.webhook_url.get_secret_value(),
                timeout=config.webhook_timeout_seconds,
                logger=registry.logger,
            )
            registry.on_event(self._webhook)
            on_release = self._webhook
        if config.return_command:
            registry.add_middleware(ReturnToBotMiddleware(config, on_release), early=True)
        address = config.api_address
        if address is not None and registry.agent_replies is not None:
            api = AgentApi(
                registry.store,
                registry.agent_replies,
                config.api_token.get_secret_value() if config.api_token else None,
                registry.logger,
                agents={name: t.get_secret_value() for name, t in config.agents.items()},
                serve_inbox=config.inbox,
                files=registry.customer_files,
                return_replies={**texts.RETURN_REPLIES, **config.return_replies},
                working_language=registry.settings.bot.working_language,
                on_release=on_release,
            )
            try:
                await api.start(*address)
            except Exception as exc:  # OSError, or UnicodeError for a name DNS refuses
                # Hand-off itself stays on (customers could not leave a human's queue
                # with return_command otherwise); only the agents' way in is missing.
                registry.logger.error(
                    "the agent API cannot listen on %s, running without it: %s",
                    config.api_listen, exc,
                )  # fmt: skip
            else:
                self.api = api

    async def teardown(self) -> None:
        if self.api is not None:
            await self.api.stop()
        if self._webhook is not None:
            await self._webhook.close()
