"""Long polling with ``getUpdates``, confirming an update only after it is handled.

Telegram forgets updates once ``getUpdates`` is called with an ``offset`` above their id.
python-telegram-bot's ``Updater`` moves the offset as soon as a batch is fetched, so a
crash before the batch is stored would lose it; here the offset moves past an update
only after ``handle`` returned (the message is stored, or kept on disk while the
database is away, through ``core.submit_or_keep``), and the next ``getUpdates`` call
confirms it. A crash in between re-delivers the update on the
next start, and the store's idempotency key (the update id) keeps it from being answered
twice.

A token rejected while polling (revoked in @BotFather: 401 Unauthorized) does not end the
poller: the channel is reported down (``Connector.health``), and ``getUpdates`` is asked
again every ``TOKEN_RECHECK_S``, so the other channels of the process keep serving and
the channel comes back by itself if the rejection was passing (a local Bot API server
restarting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable

from telegram import Bot, Update
from telegram.error import (
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from botkit.channel_health import ChannelHealth
from botkit.errors import ConnectorError
from botkit.retry import RandomSource
from connectors.telegram._retry_after import retry_after_seconds
from connectors.telegram._shape import problem
from connectors.telegram.config import TelegramConfig

__all__ = [
    "ALLOWED_UPDATES",
    "TOKEN_RECHECK_S",
    "TOKEN_REJECTED",
    "WHAT_TO_DO",
    "Poller",
    "RetryLater",
]

log = logging.getLogger("connectors.telegram")

ALLOWED_UPDATES = ("message", "callback_query")
# While an update is held, getUpdates is called again this often (it brings the
# rest of a photo album); a hold lasts about a second.
_HELD_POLL_S = 0.2
# The start check's words, and what to do, for a token rejected at run time too.
TOKEN_REJECTED = "telegram: the bot token was rejected (see @BotFather)"
WHAT_TO_DO = "put the bot's current token in [connectors.telegram] token and restart botkit"
# While the token is rejected, how often the Bot API is asked again: one cheap call a
# minute, and the channel serves again within a minute of a passing rejection.
TOKEN_RECHECK_S = 60.0


class _BatchNotLogged(logging.Filter):
    """Drops python-telegram-bot's "Error while parsing updates!" record: it holds the
    whole batch (customer messages) and a traceback. The poller then reads that batch one
    update at a time and warns, by id and field, about the one it skips."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_PARSE_FAILED))


_PARSE_FAILED = "Error while parsing updates!"


class RetryLater(Exception):
    """``handle`` could not store an update now (database down, bot stopping)."""


class Poller:
    """Fetches updates in order and hands each to ``handle``.

    ``handle`` raises ``RetryLater`` to have the update fetched again after a pause;
    other exceptions propagate (the connector's listener fails). ``skip`` is told the id
    of an update the library cannot read, and why, before it is passed over. ``health``
    is told when the token is rejected and when it is accepted again; without one, a
    rejected token ends the poller (``ConnectorError``).
    """

    def __init__(
        self,
        bot: Bot,
        config: TelegramConfig,
        handle: Callable[[Update], Awaitable[asyncio.Future[None] | None]],
        redact: Callable[[str], str],
        *,
        skip: Callable[[int, str], None],
        health: ChannelHealth | None = None,
    ) -> None:
        self.bot = bot
        self.health = health
        self.config = config
        self.handle = handle
        self.redact = redact
        self.skip = skip
        self._waits = config.retry.backoff()
        self.rng: RandomSource | None = None  # the jitter's random source (tests seed one)
        self.offset: int | None = None  # next update id to ask for; None: Telegram's own
        self._confirmed: int | None = None  # offset last sent to Telegram
        self._next: int | None = None  # first update id not handed to ``handle`` yet
        # Updates ``handle`` holds (a photo album's messages, see ``album``), oldest
        # first: the offset stays at the oldest until it is stored, so none is confirmed
        # before then, and Telegram hands it (and what follows) again meanwhile.
        self._held: list[tuple[int, asyncio.Future[None]]] = []

    async def run(self) -> None:
        """Poll until cancelled.

        Raises:
            ConnectorError: the token was rejected, and there is no ``health`` to tell.
        """
        quiet, library = _BatchNotLogged(), logging.getLogger("telegram.Bot")
        library.addFilter(quiet)
        try:
            await self._poll()
        finally:
            library.removeFilter(quiet)

    async def _poll(self) -> None:
        failures = 0
        while True:
            try:
                updates = await self._fetch()
                if self.health is not None:
                    self.health.back()  # nothing when it was up
                for update in updates:
                    if self._next is not None and update.update_id < self._next:
                        continue  # handled already: fetched again while one is held
                    held = await self.handle(update)
                    self._next = update.update_id + 1
                    if held is not None:
                        self._held.append((update.update_id, held))
                    self._advance()
                if self._held:
                    await asyncio.wait({self._held[0][1]}, timeout=_HELD_POLL_S)
                    self._advance()
                # Only now: a fetch that works while the store is down must not reset
                # the backoff, or the outage is retried every initial_backoff_s.
                failures = 0
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
            except (InvalidToken, Forbidden) as exc:
                refused = f"getUpdates refused: {self._text(exc)}"
                if self.health is None:
                    raise ConnectorError(f"telegram: polling refused: {self._text(exc)}") from None
                self.health.down(f"{TOKEN_REJECTED}: {refused}; {WHAT_TO_DO}")
                await asyncio.sleep(TOKEN_RECHECK_S)
            except (NetworkError, Conflict, RetryLater) as exc:
                # Conflict: another poller or a webhook is active (e.g. an old process
                # still long-polling after a restart); it clears on its own.
                failures += 1
                delay = self._backoff(failures)
                log.warning("telegram: polling: %s; again in %.1fs", self._text(exc), delay)
                await asyncio.sleep(delay)
            except TelegramError as exc:  # e.g. an unparsable batch from a proxy
                failures += 1
                log.error("telegram: polling failed: %s", self._text(exc))
                await asyncio.sleep(self._backoff(failures))

    def _advance(self) -> None:
        """Move the offset past what is handled and stored, up to the oldest update
        still held.

        Raises:
            RetryLater: a held update could not be stored; it is handed again.
        """
        while self._held and self._held[0][1].done():
            update_id, done = self._held.pop(0)
            if done.exception() is not None:
                # Its album is gone: all of it is handed again, and so is every update
                # after it. The other held futures are dropped; their outcome is read
                # (no "exception was never retrieved" when one fails too).
                for _, other in self._held:
                    other.add_done_callback(_read_outcome)
                self._held.clear()
                self._next = update_id
                self.offset = update_id
                raise RetryLater(str(done.exception()))
        self.offset = self._held[0][0] if self._held else self._next

    async def _fetch(self) -> tuple[Update, ...]:
        offset = self.offset
        try:
            updates = await self.bot.get_updates(
                offset=offset,
                limit=self.config.poll_limit,
                # While an update is held, Telegram still has it, so a long poll would
                # return at once anyway; 0 says so.
                timeout=0 if self._held else self.config.poll_timeout_s,
                allowed_updates=list(ALLOWED_UPDATES),
            )
        except TelegramError:
            raise
        except Exception:  # python-telegram-bot could not read an update in the batch
            self._confirmed = offset
            return await self._one_by_one()
        self._confirmed = offset
        return updates

    async def _one_by_one(self) -> tuple[Update, ...]:
        """Read the next update on its own; skip it if it cannot be read.

        Without this, one update the library cannot parse (a newer Bot API type, say)
        would be fetched again forever and stop the channel.
        """
        with warnings.catch_warnings():  # "use Bot.get_updates": we need the raw JSON
            warnings.simplefilter("ignore", PTBUserWarning)
            raw = await self.bot.do_api_request(
                "getUpdates", api_kwargs={"offset": self.offset, "limit": 1, "timeout": 0}
            )
        if not isinstance(raw, list) or not raw:
            return ()
        item = raw[0]
        update_id = item.get("update_id") if isinstance(item, dict) else None
        if not isinstance(update_id, int):
            raise RetryLater("the Bot API sent an update without an id")
        try:
            return (Update.de_json(item, self.bot),)
        except Exception as exc:
            # Named by field and type: the exception's text may quote customer data.
            self.skip(update_id, problem(item) or type(exc).__name__)
            self._next = update_id + 1
            if not self._held:
                self.offset = self._next
            return ()

    async def confirm(self, within: float = 2.0) -> None:
        """Tell Telegram about updates handled since the last fetch (on shutdown).

        Best effort: if it fails, those updates come again and are recognized as
        duplicates.
        """
        # Past albums stored since the last fetch (``flush_all`` on shutdown): else the
        # offset stays at the oldest one held, and Telegram hands it and every later
        # update again after a restart (/start answered twice).
        with contextlib.suppress(RetryLater):
            self._advance()
        if self.offset is None or self.offset == self._confirmed:
            return
        try:
            async with asyncio.timeout(within):
                await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)
            self._confirmed = self.offset
        except (TelegramError, TimeoutError) as exc:
            log.info("telegram: could not confirm the last updates: %s", self._text(exc))

    def _backoff(self, failures: int) -> float:
        # Jittered: after a Telegram outage every replica's poller failed together, and
        # would otherwise ask again together. ``failures`` grows without bound through a
        # long outage; ``Backoff`` stays at the maximum (2 ** 1100 overflowed a float).
        return self._waits.delay(failures, self.rng)

    def _text(self, exc: BaseException) -> str:
        return self.redact(f"{type(exc).__name__}: {exc}")


def _read_outcome(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()
