"""Files a visitor sends (``POST /api/files``): what is accepted, and reading it safely.

A visitor's file is for the human agent of their conversation, who opens it in the
agents' inbox. Only pictures an agent's browser shows safely and PDFs are taken, and the
type is read from the content, never from the client's label: a page labelled
``image/png`` is refused.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata

from aiohttp import web

from botkit.sanitize import BIDI_CONTROLS
from connectors.web._http import BadRequest

__all__ = ["FILE_TYPES", "SLOW_START_S", "clean_file_name", "read_file_body", "sniff_media_type"]

# media type -> (kind, its extensions: the first is given to a name without one of them)
FILE_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "image/jpeg": ("image", ("jpg", "jpeg", "jpe", "jfif")),
    "image/png": ("image", ("png",)),
    "image/gif": ("image", ("gif",)),
    "image/webp": ("image", ("webp",)),
    "application/pdf": ("file", ("pdf",)),
}
MAX_NAME_CHARS = 200
_PATH_PARTS = re.compile(r"[\\/]")


def sniff_media_type(data: bytes) -> str | None:
    """The media type of ``data`` by its first bytes, among ``FILE_TYPES``; else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_file_name(raw: str | None, media_type: str) -> str:
    """A file name fit to show and to offer as a download: the last part of a path,
    without control characters, lone surrogates or bidirectional controls, at most
    ``MAX_NAME_CHARS``, ending with an extension of ``media_type`` (the sniffed type).

    The extension is the content's, never only the visitor's: a PDF that is also an
    HTML page, sent as "invoice.html", is named "invoice.html.pdf", so an agent who
    saves and opens it gets a PDF reader, not a browser running its script.
    """
    name = _PATH_PARTS.split(raw or "")[-1]
    name = " ".join("".join(c for c in name if _shown(c)).split())
    extensions = FILE_TYPES[media_type][1]
    extension = extensions[0]
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix.lower() in extensions:
        name, extension = stem, suffix  # the visitor's spelling: "photo.JPEG"
    stem = name.strip(". ")[: MAX_NAME_CHARS - len(extension) - 1].rstrip(". ")
    return f"{stem or 'file'}.{extension}"


def _shown(char: str) -> bool:
    return unicodedata.category(char) not in ("Cc", "Cs") and ord(char) not in BIDI_CONTROLS


# How long an upload may start slowly before its average rate is held to the minimum:
# a phone's first seconds on a weak link (TCP slow start, a radio waking up) are slow.
SLOW_START_S = 10.0


async def read_file_body(
    request: web.Request, max_bytes: int, min_bytes_per_s: float = 0.0
) -> bytes:
    """The request body, refused (413) as soon as it passes ``max_bytes``: the declared
    length first, then what arrives, so an oversized upload costs at most one chunk.

    After the first ``SLOW_START_S`` seconds, the body must keep arriving at an average
    of at least ``min_bytes_per_s`` (0: no minimum), or it is dropped (408): an upload
    holds one of the few upload places while it arrives, and a client that trickles a
    byte now and then would otherwise keep it for the whole read timeout.

    Raises:
        BadRequest: compressed, too large, empty, or too slow.
    """
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise BadRequest(415, "unsupported_encoding", "compressed bodies are not accepted")
    too_large = BadRequest(413, "too_large", f"files may have at most {max_bytes} bytes")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    # Read from the stream directly: the app's client_max_size is the (much smaller)
    # message limit, and request.read() would apply it.
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        # The next bytes are due when the average since the slow start would fall
        # below the minimum: SLOW_START_S plus the time the bytes so far paid for.
        due = started + SLOW_START_S + size / min_bytes_per_s if min_bytes_per_s else None
        try:
            async with asyncio.timeout_at(due):
                chunk = await request.content.read(64 * 1024)
        except TimeoutError:
            raise BadRequest(
                408, "upload_too_slow",
                f"the file arrived slower than {min_bytes_per_s:g} bytes a second",
            ) from None  # fmt: skip
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise BadRequest(400, "empty_file", "the file is empty")
    return b"".join(chunks)
