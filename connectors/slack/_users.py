"""Slack users as botkit contacts: ``users.info`` (with locale), cached."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from botkit.errors import ConnectorError
from botkit.events import Contact
from connectors.slack._api import SlackApi

__all__ = ["UserDirectory"]

log = logging.getLogger("connectors.slack")

CHANNEL = "slack"


@dataclass(frozen=True, slots=True)
class _Entry:
    contact: Contact
    expires: float


def _name(user: dict[str, object]) -> str | None:
    profile = user.get("profile")
    names: list[object] = []
    if isinstance(profile, dict):
        names += [profile.get("display_name"), profile.get("real_name")]
    names += [user.get("real_name"), user.get("name")]
    for name in names:
        if isinstance(name, str) and name.strip():
            return name.strip()[:200]
    return None


def _locale(user: dict[str, object]) -> str | None:
    locale = user.get("locale")
    # Slack locales look like "en-US"; anything else is not trusted as a language hint.
    if isinstance(locale, str) and 2 <= len(locale) <= 35 and locale.replace("-", "").isalnum():
        return locale
    return None


class UserDirectory:
    """Builds ``Contact`` objects for Slack user ids.

    A lookup that fails or is slower than ``timeout`` yields a bare contact (id only):
    acknowledging Slack in time matters more than the locale hint. Failures are cached
    briefly so a broken ``users.info`` is not asked again for every message.
    """

    def __init__(self, api: SlackApi, *, ttl: float, size: int, timeout: float) -> None:
        self._api = api
        self._ttl = ttl
        self._size = size
        self._timeout = timeout
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    async def contact(self, user_id: str) -> Contact:
        """The contact for ``user_id`` (from the cache when fresh)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        entry = self._cache.get(user_id)
        if entry is not None and entry.expires > now:
            self._cache.move_to_end(user_id)
            return entry.contact
        contact, ttl = await self._lookup(user_id)
        self._remember(user_id, contact, loop.time() + ttl)
        return contact

    async def _lookup(self, user_id: str) -> tuple[Contact, float]:
        bare = Contact(channel=CHANNEL, external_id=user_id)
        if not user_id.startswith(("U", "W")):
            return bare, self._ttl  # bot ids and the like have no users.info entry
        try:
            async with asyncio.timeout(self._timeout):
                data = await self._api.call_once(
                    "users.info", get=True, user=user_id, include_locale="true"
                )
        except (ConnectorError, TimeoutError) as exc:
            log.info("slack users.info %s failed: %s", user_id, exc)
            return bare, min(self._ttl, 60.0)
        user = data.get("user")
        if not isinstance(user, dict):
            return bare, min(self._ttl, 60.0)
        return (
            Contact(
                channel=CHANNEL,
                external_id=user_id,
                display_name=_name(user),
                language_hint=_locale(user),
            ),
            self._ttl,
        )

    def _remember(self, user_id: str, contact: Contact, expires: float) -> None:
        self._cache[user_id] = _Entry(contact, expires)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
