"""Fan-out of conversation events to the sockets (and long polls) watching them.

Producers (the core's reply streams, the inbound handlers) never wait on a visitor's
network: they drop events into each subscriber's own bounded queue and move on.

What another bot process sharing the database stored (an agent's message sent through
its API, a reply to the visitor's other tab held there) is announced by the core's look
at the database (``advance``): subscribers then fill up to it from history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Hub", "Outgoing", "Subscriber"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One frame for the client. ``seq`` is set for stored messages (drives resume).

    ``fill_to`` instead of a frame: messages up to that seq were stored elsewhere;
    subscribers read what they lack of them from history.
    """

    payload: dict[str, Any]
    seq: int | None = None
    fill_to: int | None = None


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
        # The newest seq published (or announced) per watched conversation: a look at
        # the database that finds nothing newer announces nothing.
        self._seen: dict[str, int] = {}

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
                self._seen.pop(key, None)

    def subscribers(self, key: str) -> tuple[Subscriber, ...]:
        """Current subscribers of ``key`` (a copy, safe to iterate while they leave)."""
        return tuple(self._subs.get(key, ()))

    def publish(self, key: str, item: Outgoing) -> int:
        """Queue ``item`` for every subscriber of ``key``; returns how many got it."""
        subs = self.subscribers(key)
        for sub in subs:
            sub.push(item)
        if subs and item.seq is not None and item.seq > self._seen.get(key, 0):
            self._seen[key] = item.seq
        return len(subs)

    def watched(self) -> tuple[str, ...]:
        """Keys of the conversations with at least one subscriber."""
        return tuple(self._subs)

    def advance(self, key: str, last_seq: int) -> bool:
        """The conversation's newest stored seq is ``last_seq``: subscribers fill up to
        it from history when it is newer than what went through here. Returns whether
        they were told.

        Not while this process streams a reply to the conversation: that reply's stored
        message goes out at the stream's end with its ``stream_id`` (the client turns
        the streamed text into it), and a fill first would show it twice. Whatever a
        peer stored meanwhile is announced by the next look.
        """
        if key not in self._subs or key in self._streams or last_seq <= self._seen.get(key, 0):
            return False
        self._seen[key] = last_seq
        self.publish(key, Outgoing({}, fill_to=last_seq))
        return True

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
