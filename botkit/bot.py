"""The bot: one explicit object that wires settings, store, backend, plugins, connectors.

    async with Bot(settings) as bot:
        await bot.run()          # until bot.stop() (e.g. on SIGTERM)

``Bot`` implements ``botkit.channel.CoreHandle``: ``submit`` sanitizes and stores a
message idempotently and schedules its reply in a background task, then returns; the
reply runs through the pipeline and is streamed to the channel's connector.
Replies within one conversation are produced in the order the messages were stored.

Around it: ``_reply_flow`` (one message's reply), ``_channel_reads`` (what connectors
read), ``_spooled_intake`` (messages kept while the database is away), ``_replies``
(the reply tasks), ``_recovery`` with ``_resume`` and ``_peers`` (several processes
on one database).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any

from botkit import _channel_reads as channel_reads
from botkit._delivery import LiveReplies
from botkit._intake import check_keys, log_stored
from botkit._metrics_server import MetricsServer
from botkit._recovery import Recovery
from botkit._replies import ReplyTasks
from botkit._reply_flow import ReplyFlow
from botkit._resume import RecoveryTiming
from botkit._retention import retain_forever
from botkit._spooled_intake import SpooledIntake, open_spool
from botkit._store_at_start import open_store_waiting
from botkit.agent_replies import AgentReplies
from botkit.backends import start_backend
from botkit.backends.protocol import GenerationBackend, PromptLimits, StopsForGood, Translator
from botkit.channel import HistoryItem, IntakeReceipt, KeptFile, KeptFiles
from botkit.config.components import ComponentSpec, resolve_components_or_raise
from botkit.config.settings import Settings
from botkit.connector import Connector
from botkit.customer_files import CustomerFiles
from botkit.errors import (
    BackendError,
    BotkitError,
    ConnectorError,
    NotAcceptingError,
)
from botkit.event_bus import EventBus
from botkit.events import (
    ConversationMoved,
    ConversationStarted,
    FeedbackGiven,
    HandoffRequested,
    InboundMessage,
    SystemEvent,
)
from botkit.language.default_texts import BUSY_REPLIES, FALLBACK_REPLIES, in_working_language
from botkit.language.setup import LanguageSupport
from botkit.metrics import (
    BotMetrics,
    EngineReport,
    MeasuredTranslator,
    OpenConnections,
    Snapshot,
)
from botkit.pipeline import GenerationHandler, Pipeline
from botkit.pipeline.middleware import (
    CurrentConversationMiddleware,
    LoadConversationMiddleware,
    RateLimitMiddleware,
    SanitizeMiddleware,
)
from botkit.plugins import PluginManager
from botkit.readiness import CHECK_TIMEOUT_S, Readiness
from botkit.sanitize import check_length
from botkit.store import ConversationStore
from botkit.store.records import (
    InboundFinish,
    IntakeResult,
    MessageStatus,
)

__all__ = ["Bot"]

_log = logging.getLogger("botkit.bot")

# At shutdown, how long the connectors get to submit what they hold back (``Connector.
# hand_over_held``: a Telegram album being gathered, held up to 3 s) before the bot stops
# taking messages.
HAND_OVER_S = 5.0

# How often ``Bot.run`` looks whether its backend stopped for good (``StopsForGood``):
# customers get the fallback reply meanwhile, so a few seconds do no harm.
BACKEND_WATCH_S = 2.0


class Bot:
    """The running bot. Use as an async context manager.

    Args:
        settings: the validated settings tree.
        backend: a started or unstarted backend to use instead of the configured one
            (tests, embedding); it is started and closed by the bot.
        translator: a translator to use instead of the configured one (``auto`` mode
            then means ``pivot``); started and closed by the bot when it has
            ``start``/``close``.
        connectors: names of the configured connectors to create (default: all enabled).
        recovery: heartbeat and recovery-pass intervals (tests; the defaults suit
            production, see ``botkit._resume.RecoveryTiming``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: GenerationBackend | None = None,
        translator: Translator | None = None,
        connectors: Sequence[str] | None = None,
        recovery: RecoveryTiming | None = None,
    ) -> None:
        self.settings = settings
        self._timing = recovery or RecoveryTiming()
        # This run's claims, heartbeat, peer sync and recovery passes (botkit/_recovery.py).
        self._recovery: Recovery | None = None
        # Messages kept on disk while the database is away (submit_or_keep), or None.
        self._spooled: SpooledIntake | None = None
        self._backend_override = backend
        self._translator_override = translator
        self._language = LanguageSupport(settings, translator=translator)
        self._connector_names = None if connectors is None else set(connectors)
        self._store: ConversationStore | None = None
        self._backend: GenerationBackend | None = None
        self._plugins = PluginManager([])
        self._pipeline = Pipeline()
        self._connectors: dict[str, Connector[Any]] = {}
        self._agent_replies: AgentReplies | None = None
        self._live = LiveReplies()  # replies being delivered: an agent's takeover ends them
        self._accepting = False
        self._started = False
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._replies = ReplyTasks(self._reply_to, self._force)
        self._flow: ReplyFlow | None = None  # set by start()
        self.events = EventBus()
        self.metrics = BotMetrics(self._snapshot)
        self.events.subscribe(self._count_event)
        self._metrics_server: MetricsServer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Bot:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def warm_up(self) -> None:
        """Start now what would otherwise start with the first traffic (the language
        detection worker process), so that serving starts in its steady state.
        ``botkit run`` calls it before serving."""
        await self._language.warm_up()

    async def start(self) -> None:
        """Open the store, start the backend, set up plugins and create connectors.

        Raises:
            ConfigError: a connector or plugin section is invalid or not installed.
            SchemaOutdatedError: the database schema is behind and may not be upgraded here.
            StoreError, BackendError: the database or the backend cannot start.
            TranslationError: the translator cannot be loaded or lacks a configured pair.
        """
        if self._started:
            return
        self._stop.clear()
        self._force.clear()
        plugin_specs = resolve_components_or_raise("plugins", self.settings.plugins)
        connector_specs = resolve_components_or_raise(
            "connectors", self.settings.connectors, only=self._connector_names
        )
        try:
            store = self._store = ConversationStore(self.settings.store)
            claims = await open_store_waiting(
                store,
                self._timing,
                auto_upgrade=self.settings.store.auto_migrate,
                wait_s=self.settings.store.start_wait_seconds,
            )
            # Peers' takeovers and agents' messages reach what this process serves; it
            # reads the connectors as they are attached.
            self._recovery = Recovery(
                claims,
                self._live,
                self._connectors,
                self._replies,
                window_seconds=self.settings.bot.resume_unanswered_seconds,
                grace_seconds=self.settings.bot.shutdown_grace_seconds,
            )
            await self._open_spool()
            if self._backend_override is not None:
                self._backend = self._backend_override
                await self._backend.start()
            else:
                self._backend = await start_backend(self.settings.backend)
            if isinstance(self._backend, PromptLimits):
                # A context that the system prompt leaves no room in would refuse every
                # message while the bot reports ready (the backend alone cannot tell).
                self._backend.check_prompt_room(self.settings.bot.system_prompt)
            working = self.settings.bot.working_language
            self._language = LanguageSupport(
                self.settings,
                translator=self._translator_override,
                wrap_translator=lambda t: MeasuredTranslator(t, working, self.metrics),
            )
            await self._language.start(self._backend)
            self._pipeline = self._build_pipeline()
            self._flow = ReplyFlow(
                self.settings,
                store,
                self._backend,
                self._pipeline,
                self._connectors,
                self._live,
                self.events,
                self.metrics,
            )
            self._plugins = PluginManager(plugin_specs)
            self._agent_replies = AgentReplies(
                store,
                self._connectors,
                self.settings.bot.max_message_chars,
                on_take_over=self._live.supersede,
                customer_text=self._language.for_customer,
            )
            await self._plugins.setup_all(
                self._pipeline,
                settings=self.settings,
                store=store,
                backend=self._backend,
                events=self.events,
                agent_replies=self._agent_replies,
                customer_files=CustomerFiles(self._connectors, kept=store),
            )
            for spec in connector_specs:
                self.attach_connector(self._make_connector(spec))
            if self.settings.metrics.listen:
                self._metrics_server = await MetricsServer.serve(
                    self.settings.metrics.listen, self.metrics, self
                )
        except BaseException:
            await self._release()
            raise
        self._started = True
        self._accepting = True
        _log.info(
            "bot %r started: backend=%s plugins=%s connectors=%s",
            self.settings.bot.name,
            self._backend.name,
            self._plugins.active or "none",
            sorted(self._connectors) or "none",
        )

    def _build_pipeline(self) -> Pipeline:
        bot = self.settings.bot
        pipeline = Pipeline(fallback=GenerationHandler(bot))
        self._language.install_outer(pipeline)
        # The rate limit first: a flood of over-long or empty messages must not turn
        # into a flood of notices either.
        pipeline.add_middleware(RateLimitMiddleware(bot.rate_limit))
        pipeline.add_middleware(SanitizeMiddleware(bot))
        # Language detection and translation run before the history is loaded: also
        # for conversations a human handles (the agent sees both texts), and the
        # history then holds working-language text.
        self._language.install(pipeline)
        # Who answers is decided on the conversation as it is after those (seconds,
        # maybe): an agent may have taken it over or given it back meanwhile.
        pipeline.add_middleware(CurrentConversationMiddleware())
        pipeline.add_middleware(LoadConversationMiddleware(bot))
        return pipeline

    def _make_connector(self, spec: ComponentSpec) -> Connector[Any]:
        try:
            connector: Connector[Any] = spec.cls(spec.config, self)
        except BotkitError:
            raise
        except Exception as exc:
            raise ConnectorError(f"connector {spec.name!r} could not be created: {exc}") from exc
        return connector

    def attach_connector(self, connector: Connector[Any]) -> None:
        """Route replies for ``connector.name`` to ``connector`` (also used by ``run``).

        Raises:
            ConnectorError: ``connector`` is not a ``botkit.connector.Connector``.
        """
        if not isinstance(connector, Connector):
            # The core calls every feature the base class declares, without looking
            # first: an object with only the four methods would fail on each message.
            raise ConnectorError(
                f"{type(connector).__qualname__} is not a connector: a connector "
                "subclasses botkit.connector.Connector"
            )
        self._connectors[connector.name] = connector
        self.metrics.add_channel(connector.name)
        health = connector.health
        self.metrics.channel_up.labels(connector.name).set_function(lambda: float(health.up))

    @property
    def connectors(self) -> Mapping[str, Connector[Any]]:
        return dict(self._connectors)

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    @property
    def plugins(self) -> PluginManager:
        return self._plugins

    @property
    def agent_replies(self) -> AgentReplies:
        """Sends human agents' messages to customers (available once started)."""
        if self._agent_replies is None:
            raise BotkitError("the bot is not started")
        return self._agent_replies

    @property
    def store(self) -> ConversationStore:
        if self._store is None:
            raise BotkitError("the bot is not started")
        return self._store

    @property
    def backend(self) -> GenerationBackend:
        if self._backend is None:
            raise BotkitError("the bot is not started")
        return self._backend

    def stop(self, *, force: bool = False) -> None:
        """Ask ``run`` to return. ``force`` also cuts the shutdown grace period short
        (a second Ctrl-C). Safe to call from a signal handler installed on the loop."""
        self._stop.set()
        if force:
            self._force.set()

    async def run(self) -> None:
        """Connect every connector and listen until ``stop()`` or every listener ends.
        After a ``stop()`` (a signal while the bot started), it connects no more.

        Raises:
            ConnectorError: no connector is enabled, or one failed to connect or listen.
            BackendError: the backend or the translator stopped for good
                (``StopsForGood``): only a new process can answer again.
        """
        if not self._started:
            raise BotkitError("call start() (or use `async with Bot(...)`) before run()")
        if not self._connectors:
            raise ConnectorError("no connector is enabled; add a [connectors.NAME] section")
        for connector in self._connectors.values():
            if self._stop.is_set():  # close() disconnects what connected
                return
            await connector.connect()
            _log.info("connector %r connected", connector.name)
        if self._spooled is not None:
            self._spooled.start_storing()
        recovery = self._recovery
        assert recovery is not None  # set by start()
        await recovery.resume_unanswered_or_wait()
        listeners = {
            asyncio.create_task(c.listen(), name=f"listen-{c.name}"): c.name
            for c in self._connectors.values()
        }
        stop = asyncio.create_task(self._stop.wait(), name="bot-stop")
        resume = asyncio.create_task(recovery.resume_periodically(), name="resume-unanswered")
        pending: set[asyncio.Task[Any]] = {*listeners, stop, resume}
        if self.settings.store.retention_days:
            retention = retain_forever(self.store, self.settings.store.retention_days)
            pending.add(asyncio.create_task(retention, name="retention"))
        mortal: list[StopsForGood] = []
        for part in (self._backend, self._language.translator):
            if isinstance(part, StopsForGood):
                mortal.append(part)
        backend_gone: asyncio.Task[str] | None = None
        if mortal:
            backend_gone = asyncio.create_task(_stopped_for_good(mortal), name="backend")
            pending.add(backend_gone)
        failure: BaseException | None = None
        try:
            while listeners.keys() & pending and stop in pending and failure is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done & listeners.keys():
                    if task.cancelled() or task.exception() is None:
                        continue
                    # Any listener failure ends the process, for its supervisor to
                    # start it again: marking only its channel down would leave it
                    # dead until someone restarts botkit by hand. A rejected token
                    # is no failure here: the connector reports it through ``health``
                    # and keeps listening (botkit.channel_health).
                    failure = task.exception()
                    _log.error("connector %r failed: %s", listeners[task], failure)
                if backend_gone in done:
                    failure = BackendError(f"{backend_gone.result()}; the bot stops")
                    _log.critical("%s, for its supervisor to start it again", failure)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # Input has stopped; what a channel held back is taken before the bot
            # stops taking messages (it would be refused, and lost or handed again).
            await self._hand_over_held()
            self._accepting = False
            # Replies in flight still go out through their (still connected) channels.
            await self._finish_in_flight()
            await self._disconnect_all()
        if failure is not None:
            if isinstance(failure, BotkitError):
                raise failure
            raise ConnectorError(f"a connector failed: {failure}") from failure

    async def _hand_over_held(self) -> None:
        connectors = list(self._connectors.values())
        try:
            async with asyncio.timeout(HAND_OVER_S):
                results = await asyncio.gather(
                    *(c.hand_over_held() for c in connectors), return_exceptions=True
                )
        except TimeoutError:
            _log.warning("connectors still held input after %.0f s: not taken", HAND_OVER_S)
            return
        for connector, result in zip(connectors, results, strict=True):
            if isinstance(result, Exception):
                _log.warning("connector %r failed to hand over: %s", connector.name, result)

    async def _disconnect_all(self) -> None:
        for connector in self._connectors.values():
            try:
                await connector.disconnect()
            except Exception as exc:
                _log.warning("connector %r failed to disconnect: %s", connector.name, exc)

    async def drain(self, within: float | None = None) -> bool:
        """Wait for in-flight work: messages kept during a database outage to be stored,
        then every reply; True when all finished within ``within`` seconds.

        Returns early (False) when ``stop(force=True)`` is called meanwhile.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._spooled is not None and not await self._spooled.wait_stored(within):
            return False
        left = None if within is None else max(0.0, within - (loop.time() - started))
        return await self._replies.drain(left)

    async def close(self) -> None:
        """Stop accepting, finish in-flight replies up to the grace period, release all.

        Replies still running after ``bot.shutdown_grace_seconds`` are cancelled; what
        they had produced is stored with status ``failed``.
        """
        self._accepting = False
        self._stop.set()
        await self._finish_in_flight()
        await self._disconnect_all()
        await self._release()
        self._started = False

    async def _finish_in_flight(self) -> None:
        await self._replies.finish(self.settings.bot.shutdown_grace_seconds)

    async def _open_spool(self) -> None:
        self._spooled = SpooledIntake(
            await open_spool(self.settings.store),
            self._submit,
            self._conversation_exists,
            self._record_agent_reply,
            self._is_accepting,
        )

    def _is_accepting(self) -> bool:
        return self._accepting

    async def _conversation_exists(self, channel: str, conversation_key: str) -> bool:
        return bool(await self.store.messages_after(channel, conversation_key, 0, 1))

    async def _release(self) -> None:
        server, self._metrics_server = self._metrics_server, None
        if server is not None:
            await server.stop()
        spooled, self._spooled = self._spooled, None
        if spooled is not None:
            await spooled.close()
        recovery, self._recovery = self._recovery, None
        if recovery is not None:
            await recovery.close()
        await self._plugins.teardown_all()
        if self._agent_replies is not None:
            await self._agent_replies.close()
        await self._language.close()
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                await backend.close()
            except Exception as exc:
                _log.warning("backend %r failed to close: %s", backend.name, exc)
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    # -- CoreHandle --------------------------------------------------------------------

    async def ready(self) -> bool:
        """True when accepting messages, the store and backend answer, and a channel
        serves (see ``readiness``)."""
        if not self._accepting or self._store is None or self._backend is None:
            return False
        return (await self.readiness()).ready

    async def readiness(self) -> Readiness:
        """Each part of readiness (``/readyz`` on the web and metrics ports): whether the
        bot accepts messages, the store and backend answer (asked together), and which
        channels serve."""
        store, backend = self._store, self._backend
        store_ok, backend_ok = await asyncio.gather(
            _answers(None if store is None else store.ping()),
            _answers(None if backend is None else backend.ready()),
        )
        return Readiness(
            accepting=self._accepting,
            store=store_ok,
            backend=backend_ok,
            channels={name: c.health.up for name, c in self._connectors.items()},
        )

    async def submit(self, message: InboundMessage) -> IntakeReceipt:
        """Store ``message`` once and schedule its reply; returns as soon as it is stored.

        Raises:
            NotAcceptingError: the bot is shutting down (the channel should retry).
            MessageRejectedError: ids no database can hold (not worth a retry).
            StoreError: the message could not be stored.
        """
        with self.metrics.refusals(message.channel):
            return await self._submit(message)

    async def _submit(self, message: InboundMessage) -> IntakeReceipt:
        """``submit`` without counting a refusal: the outage spool's tries (what it keeps
        is not refused; ``submit_or_keep`` counts what it cannot keep)."""
        self._admit(message)
        checked = check_length(message.text, self.settings.bot.max_message_chars)
        claimed_by = None if self._recovery is None else self._recovery.claims.id
        # Before the intake reads the conversation's status: a takeover in this process
        # from here on may be missing from it (see ``_reply_to``).
        read_at = self._live.now()
        result = await self.store.intake(
            message, text=checked.text, rejected=checked.too_long, claimed_by=claimed_by
        )
        receipt = IntakeReceipt(
            result.conversation.id,
            result.message.seq,
            result.duplicate,
            channel_reads.history_item(result.message),
        )
        if result.duplicate:
            self.metrics.message(message.channel, "duplicate")
            if result.message.status is MessageStatus.RECEIVED and self._recovery is not None:
                await self._recovery.answer_orphan(
                    message, result, too_long=checked.too_long, read_at=read_at
                )
            else:
                _log.debug("duplicate delivery %s ignored", message.idempotency_key)
            return receipt
        self.metrics.message(message.channel, "too_long" if checked.too_long else "stored")
        log_stored(message, result, too_long=checked.too_long)
        if not (result.new_conversation or result.reopened):
            self._replies.schedule(message, result, too_long=checked.too_long, read_at=read_at)
            return receipt
        # Scheduled before publishing, so the reply takes its place in the conversation's
        # queue now: a later message stored while a subscriber awaits must queue behind
        # it. The reply itself waits until the subscribers have seen the new conversation.
        published = asyncio.Event()
        self._replies.schedule(
            message, result, too_long=checked.too_long, read_at=read_at, after=published
        )
        try:
            await self.events.publish(
                ConversationStarted(
                    message.channel, message.conversation_key, reopened=result.reopened
                )
            )
        finally:
            published.set()
        return receipt

    async def submit_or_keep(
        self,
        message: InboundMessage,
        *,
        existing_conversation_only: bool = False,
        agent_name: str | None = None,
    ) -> IntakeReceipt | None:
        """``submit`` for a channel that cannot hold a message itself (Slack drops an
        event after about five minutes of retries, Telegram a webhook update after
        some): while the database is unavailable, the message is kept on local disk
        (``[store] outage_spool_dir``), to be stored and answered, in order, once it
        answers. Acknowledge the platform on return.

        Args:
            existing_conversation_only: store it only if its conversation is stored
                already (checked when it is stored): a reply in a thread the bot may not
                be part of.
            agent_name: the author (``message.contact``) is one of the channel's human
                agents, by this name: the message is stored as their reply (see
                ``record_agent_message``; an empty text is described by its files), or,
                when it is not an agent's message there, as a customer's. Kept alike:
                an agent's reply that a Slack outage dropped would leave the bot
                answering a customer the agent took over.

        Returns:
            The receipt; None when the message was kept, stored as an agent's, or is
            not for the bot (``existing_conversation_only`` and no such conversation).

        Raises:
            MessageRejectedError: as ``submit``.
            StoreError: not stored and not kept: a database failure that is not an
                outage, or (``DatabaseUnavailableError``) an outage with the spool off,
                full or failing.
        """
        with self.metrics.refusals(message.channel):
            self._admit(message)
            assert self._spooled is not None  # set by start(), like the store _admit checked
            return await self._spooled.submit_or_keep(
                message,
                existing_conversation_only=existing_conversation_only,
                agent_name=agent_name,
            )

    async def _record_agent_reply(self, message: InboundMessage, agent_name: str) -> bool:
        names = ", ".join(a.name for a in message.attachments if a.name)
        return await self.record_agent_message(
            message.channel,
            message.conversation_key,
            message.text if message.text.strip() else f"(files: {names or 'unnamed'})",
            agent=agent_name,
            agent_id=message.contact.external_id,
            delivery_key=message.idempotency_key,
        )

    def _admit(self, message: InboundMessage) -> None:
        """Refuse a message while the bot is not accepting any, and ids no database can
        hold (before anything is stored or kept). The customer's language is not known
        here: the texts are in the working language (the built-in one when kept)."""
        bot, working = self.settings.bot, self.settings.bot.working_language
        if not self._accepting or self._store is None:
            busy = in_working_language(bot.busy_reply, BUSY_REPLIES, working)
            raise NotAcceptingError("the bot is not accepting messages", busy)
        check_keys(message, in_working_language(bot.fallback_reply, FALLBACK_REPLIES, working))

    async def history(
        self, channel: str, conversation_key: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[HistoryItem]:
        """Stored messages of a conversation after ``after_seq`` (oldest first)."""
        return await channel_reads.history(
            self.store, channel, conversation_key, after_seq=after_seq, limit=limit
        )

    async def record_agent_message(
        self,
        channel: str,
        conversation_key: str,
        text: str,
        *,
        agent: str,
        agent_id: str,
        delivery_key: str,
    ) -> bool:
        """Store a message a human agent wrote on the channel (see ``CoreHandle``)."""
        stored = await self.agent_replies.record(
            channel,
            conversation_key,
            text,
            agent=agent,
            agent_id=agent_id,
            delivery_key=delivery_key,
        )
        return stored is not None

    async def move_conversation(self, channel: str, old_key: str, new_key: str) -> bool:
        """Re-key a conversation whose chat got a new id (see ``CoreHandle``), and
        publish ``ConversationMoved`` when this call moved it."""
        moved = await self.store.move_conversation(channel, old_key, new_key)
        if moved:
            await self.events.publish(ConversationMoved(channel, new_key, old_key=old_key))
        return moved

    async def keep_file(
        self,
        channel: str,
        conversation_key: str,
        *,
        client_id: str,
        name: str,
        media_type: str,
        data: bytes,
        max_files: int | None = None,
    ) -> KeptFile:
        """Keep a customer's file in the store (see ``CoreHandle.keep_file``)."""
        return await channel_reads.keep_file(
            self.store,
            channel,
            conversation_key,
            client_id=client_id,
            name=name,
            media_type=media_type,
            data=data,
            max_files=max_files,
        )

    async def kept_files(self, channel: str, conversation_key: str, client_id: str) -> KeptFiles:
        """What a conversation's files are (see ``CoreHandle.kept_files``)."""
        return await channel_reads.kept_files(self.store, channel, conversation_key, client_id)

    async def session_key(self, name: str) -> bytes:
        """The store's shared key ``name`` (see ``CoreHandle.session_key``)."""
        return await self.store.session_key(name)

    async def last_seq(self, channel: str, conversation_key: str) -> int:
        """The highest stored ``seq`` of a conversation (0 when it has none)."""
        return await channel_reads.last_seq(self.store, channel, conversation_key)

    async def with_human(self, channel: str, conversation_key: str) -> bool:
        """Whether a human agent has the conversation or it waits for one."""
        return await channel_reads.with_human(self.store, channel, conversation_key)

    # -- replies -----------------------------------------------------------------------

    async def _reply_to(
        self,
        message: InboundMessage,
        intake: IntakeResult,
        too_long: bool,
        queued: bool,
        turn_at: float,
        read_at: float,
    ) -> None:
        """Reply to one stored message (``ReplyTasks`` calls it; see ``ReplyFlow``)."""
        flow = self._flow
        if flow is None:  # replies are scheduled only by a started bot
            raise BotkitError("the bot is not started")
        connector = self._connectors.get(message.channel)
        if connector is not None and not connector.health.up:
            await self._not_answered_while_down(connector, message, intake, turn_at)
            return
        await flow.reply_to(message, intake, too_long, queued, turn_at, read_at)

    async def _not_answered_while_down(
        self,
        connector: Connector[Any],
        message: InboundMessage,
        intake: IntakeResult,
        turn_at: float,
    ) -> None:
        """A message stored while its channel is down (Slack still delivers events to a
        revoked app's endpoint): no reply is generated, as none could be sent. It stays
        stored (an agent sees it), is recorded as done, and its reply counts as failed;
        the channel's ERROR is repeated (at most once a minute)."""
        health = connector.health
        if health.reason is not None:
            health.down(health.reason)
        self.metrics.reply(
            message.channel, "failed", first_text_seconds=None,
            total_seconds=time.monotonic() - turn_at,
        )  # fmt: skip
        if intake.message.status is MessageStatus.RECEIVED:
            await self.store.finish_inbound(InboundFinish(intake.message))

    # -- metrics -----------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        """What the bot holds now (read at each scrape of the metrics)."""
        store, backend = self._store, self._backend
        cache = None if store is None else store.history_cache
        outage = None if store is None else store.outage
        spool = None if self._spooled is None else self._spooled.spool
        return Snapshot(
            replies_in_flight=sum(len(d) for d in self._live.deliveries().values()),
            reply_tasks=len(self._replies),
            peers=0 if self._recovery is None else self._recovery.peers.peers,
            history_cache_hits=0 if cache is None else cache.hits,
            history_cache_misses=0 if cache is None else cache.misses,
            engine=backend.engine_report() if isinstance(backend, EngineReport) else None,
            connections={
                name: connector.open_connections()
                for name, connector in self._connectors.items()
                if isinstance(connector, OpenConnections)
            },
            database_up=None if outage is None else not outage.down,
            database_errors={} if outage is None else outage.failures_by_reason,
            spooled_messages=None if spool is None else len(spool),
        )

    async def _count_event(self, event: SystemEvent) -> None:
        if isinstance(event, HandoffRequested):
            self.metrics.handoffs.labels(event.channel).inc()
        elif isinstance(event, FeedbackGiven) and event.rating in ("good", "bad"):
            self.metrics.feedback.labels(event.channel, event.rating).inc()


async def _answers(check: Awaitable[bool] | None) -> bool:
    """Whether a readiness check says yes; no, without one, when it raises, or when it
    does not answer within ``CHECK_TIMEOUT_S`` (shorter than the probe's own bound, so
    a hanging store reads as "store": "down", not a bare timeout)."""
    if check is None:
        return False
    try:
        return bool(await asyncio.wait_for(check, CHECK_TIMEOUT_S))
    except Exception:  # a probe must answer, whatever the check raises
        return False


async def _stopped_for_good(parts: Sequence[StopsForGood]) -> str:
    """Wait until one of ``parts`` (the backend, the translator) has stopped for good;
    why it has. A poll, not an event: an engine stops in its own thread, and the
    protocol stays one plain method."""
    while True:
        for part in parts:
            try:
                reason = part.stopped_for_good()
            except Exception as exc:  # a third-party backend's bug must not end run()
                _log.debug("%r could not say whether it stopped: %r", part, exc)
                continue
            if reason is not None:
                return reason
        await asyncio.sleep(BACKEND_WATCH_S)
