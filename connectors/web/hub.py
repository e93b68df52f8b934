"""Fan-out of conversation events to the sockets (and long polls) watching them.

Producers (the core's reply streams, the inbound handlers) never wait on a visitor's
network: they drop events into each subscriber's own bounded queue and move on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Hub", "Outgoing", "Subscriber"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One frame for the client. ``seq`` is set for stored messages (drives resume)."""

    payload: dict[str, Any]
    seq: int | None = None


class Subscriber(Protocol):
    """Something that receives a conversation's events (a socket, a long poll)."""

    def push(self, item: Outgoing) -> None: ...


@dataclass(slots=True)
class _Stream:
    in_reply_to_seq: int | None
    parts: list[str] = field(default_factory=list)


class Hub:
    """Conversation key -> subscribers, plus the replies being streamed right now."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}
        self._streams: dict[str, dict[str, _Stream]] = {}

    def subscribe(self, key: str, sub: Subscriber) -> list[Outgoing]:
        """Add ``sub`` and return frames that recreate the replies in flight.

        Done in one synchronous step so no delta can slip between the snapshot and the
        subscription.
        """
        self._subs.setdefault(key, set()).add(sub)
        return [
            Outgoing(
                {
                    "type": "stream",
                    "stream_id": sid,
                    "in_reply_to_seq": st.in_reply_to_seq,
                    "text": "".join(st.parts),
                }
            )
            for sid, st in self._streams.get(key, {}).items()
        ]

    def unsubscribe(self, key: str, sub: Subscriber) -> None:
        """Remove ``sub``; forget the key when nobody watches it."""
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[key]

    def subscribers(self, key: str) -> tuple[Subscriber, ...]:
        """Current subscribers of ``key`` (a copy, safe to iterate while they leave)."""
        return tuple(self._subs.get(key, ()))

    def publish(self, key: str, item: Outgoing) -> int:
        """Queue ``item`` for every subscriber of ``key``; returns how many got it."""
        subs = self.subscribers(key)
        for sub in subs:
            sub.push(item)
        return len(subs)

    def stream_start(self, key: str, stream_id: str, in_reply_to_seq: int | None) -> None:
        """A reply started; subscribers show the typing indicator."""
        self._streams.setdefault(key, {})[stream_id] = _Stream(in_reply_to_seq)
        self.publish(
            key,
            Outgoing(
                {
                    "type": "stream",
                    "stream_id": stream_id,
                    "in_reply_to_seq": in_reply_to_seq,
                    "text": "",
                }
            ),
        )

    def stream_delta(self, key: str, stream_id: str, text: str) -> None:
        """Append ``text`` to a reply in flight and forward it."""
        stream = self._streams.get(key, {}).get(stream_id)
        if stream is not None:
            stream.parts.append(text)
        self.publish(key, Outgoing({"type": "delta", "stream_id": stream_id, "text": text}))

    def stream_end(self, key: str, stream_id: str) -> None:
        """The reply finished (its stored message was published before this) or failed."""
        streams = self._streams.get(key)
        if streams is not None:
            streams.pop(stream_id, None)
            if not streams:
                del self._streams[key]
        self.publish(key, Outgoing({"type": "stream_end", "stream_id": stream_id}))

    @property
    def conversations(self) -> int:
        """Number of conversations with at least one subscriber."""
        return len(self._subs)
