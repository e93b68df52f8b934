"""Keeping the bot token out of logs.

The Bot API puts the token in every URL path (``/bot<TOKEN>/sendMessage``), and the
libraries underneath log those URLs: httpx at INFO for every request, python-telegram-bot
at DEBUG when a ``Bot`` is created. ``TokenRedactor`` is a logging filter attached to those
libraries' loggers while a connector runs; it rewrites a record's message (and its
formatted traceback) with the token replaced by ``<token>`` before any handler sees it.
The webhook's secret token is masked the same way (``<secret>``): python-telegram-bot
logs ``setWebhook``'s parameters at DEBUG. The CLI's formatter redacts ``${VAR}``
values too; this filter also protects applications that embed botkit with their own
logging setup, and test log capture.
"""

from __future__ import annotations

import logging
import traceback

__all__ = ["LIBRARY_LOGGERS", "TokenRedactor"]

LIBRARY_LOGGERS = ("httpx", "httpcore", "telegram", "hpack", "aiohttp.client")
_MASK = "<token>"
_SECRET_MASK = "<secret>"


class TokenRedactor(logging.Filter):
    """Replaces the bot token (and its URL-path form) in log records with ``<token>``,
    and each of ``others`` (the webhook's secret token) with ``<secret>``."""

    def __init__(self, secret: str, *others: str) -> None:
        super().__init__()
        self._secrets = [(secret, _MASK)]
        # The numeric bot id before ":" is public; the part after it is the secret proper.
        _, _, tail = secret.partition(":")
        if len(tail) >= 16:
            self._secrets.append((tail, _MASK))
        # python-telegram-bot logs setWebhook's parameters, secret_token included, at
        # DEBUG; an application with its own logging setup would print it.
        self._secrets += [(other, _SECRET_MASK) for other in others if other]
        self._loggers: list[logging.Logger] = []

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secrets masked."""
        for secret, mask in self._secrets:
            if secret in text:
                text = text.replace(secret, mask)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own handling
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            clean = self.redact(text)
            if clean != text:
                # Formatters only format exc_info when exc_text is empty; the live
                # exception is dropped too, for handlers that format it themselves.
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def install(self) -> None:
        """Attach to the library loggers (and their existing children)."""
        names = set(LIBRARY_LOGGERS)
        for name in list(logging.root.manager.loggerDict):
            if any(name.startswith(f"{prefix}.") for prefix in LIBRARY_LOGGERS):
                names.add(name)
        for name in sorted(names):
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)
                self._loggers.append(logger)

    def uninstall(self) -> None:
        """Detach from every logger ``install`` attached to."""
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers.clear()
