"""Files a web visitor sends to the human agent of their conversation (``POST /api/files``):
kept in the bot's store, shown back to the visitor as a message of its own, opened by
the agent through the agent API, erased with the conversation. The real bot (echo
backend, temporary SQLite), web connector and agent API; hostile uploads refused with
nothing stored."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from web_helpers import ORIGIN, SECRET, Visitor, WebHarness, reply_to, serve, web_settings

import connectors.web.files
from botkit.bot import Bot
from botkit.customer_files import CustomerFiles, FileUnavailableError
from botkit.errors import ConfigError, StoreError
from botkit.events import Attachment
from botkit.handoff.api import AgentApi
from botkit.store import ConversationRecord
from connectors.web.identity import user_hash

AGENT_TOKEN = "ana-own-token-0123456789abcdef"
# The smallest real PNG (1x1, one red pixel), and what other kinds start with.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
    b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
    b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82"
)
# "mi-khaham.png" in Persian: its zero-width non-joiner (U+200C) is part of the spelling.
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645.png"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Files:
    web: WebHarness
    api: str  # the agent API's base URL

    async def upload(
        self,
        token: str | None,
        body: bytes | Any,
        *,
        client_id: str = "f1",
        name: str | None = "screen.png",
        **headers: str,
    ) -> aiohttp.ClientResponse:
        params = {"client_id": client_id} | ({"name": name} if name is not None else {})
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.web.client.post(
            "/api/files", params=params, data=body,
            headers={"Origin": ORIGIN, "Content-Type": "application/octet-stream",
                     **auth, **headers})  # fmt: skip

    async def agent_get(self, path: str) -> tuple[int, bytes, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.api + path, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as resp,
        ):
            return resp.status, await resp.read(), resp.content_type


async def _files(tmp_path: Path, **web: Any) -> AsyncIterator[Files]:
    handoff = {"api_listen": "127.0.0.1:0", "agents": {"Ana": AGENT_TOKEN}}
    web = {"file_rate": {"rate": 1000, "burst": 1000}} | web  # limits tested on their own
    async with AsyncExitStack() as stack:
        harness = await serve(
            stack, Bot(web_settings(tmp_path / "bot.db", web, plugins={"handoff": handoff}))
        )
        api = getattr(harness.bot.plugins.get("handoff"), "api", None)
        assert isinstance(api, AgentApi) and api.port
        yield Files(harness, f"http://127.0.0.1:{api.port}")


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[Files]:
    async for f in _files(tmp_path):
        yield f


async def _release(files: Files, conversation: ConversationRecord) -> None:
    """The agent gives the conversation back through the agent API."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{files.api}/v1/conversations/{conversation.id}/release",
            headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
        ) as released,
    ):
        assert released.status == 200, await released.text()


async def _with_agent(web: WebHarness, **hello: Any) -> tuple[Visitor, ConversationRecord]:
    """A visitor whose conversation a human agent has taken over; and that conversation."""
    v = await web.visitor(**hello)
    await v.send("I need a person, please", "m1")
    await v.until(reply_to(1))
    # The newest conversation is this visitor's (a test may open several).
    conversation = max(await web.bot.store.conversations_with_status(["bot"]),
                       key=lambda c: c.id)  # fmt: skip
    stored = await web.bot.agent_replies.send(
        conversation.id, "Hi, Ana here.", agent="Ana", take_over=True
    )
    await v.until(lambda f: f.get("seq") == stored.seq)
    return v, conversation


async def _kept_attachment(web: WebHarness, conversation: ConversationRecord,
                           seq: int) -> Attachment:  # fmt: skip
    (message,) = await web.bot.store.messages_after("web", conversation.key, seq - 1, 1)
    assert message.seq == seq
    (attachment,) = message.attachments
    return attachment


async def test_a_picture_reaches_the_agent_and_shows_in_the_chat(files: Files) -> None:
    v, conversation = await _with_agent(files.web)
    cid = conversation.id
    assert v.frames[0]["max_file_bytes"] == 10 * 1024 * 1024  # the welcome says the limit
    resp = await files.upload(v.token, PNG, name="C:\\Users\\me\\Desktop\\screen shot.png")
    assert resp.status == 201, await resp.text()
    receipt = await resp.json()
    frame = await v.until(lambda f: f.get("seq") == receipt["seq"])
    assert (frame["direction"], frame["text"], frame["client_id"]) == ("in", "", "f1")
    assert frame["attachments"] == [
        {"kind": "image", "name": "screen shot.png", "media_type": "image/png", "size": len(PNG)}
    ]
    assert "ref" not in frame["attachments"][0]  # the store's handle stays server-side
    # The same file after a reload, and no reply from the bot to a file for a person.
    replayed = (await files.web.history(v.token or ""))[-1]
    assert (replayed["seq"], replayed["attachments"]) == (frame["seq"], frame["attachments"])
    await asyncio.sleep(0.2)
    assert not [f for f in v.stored() if f.get("in_reply_to_seq") == receipt["seq"]]
    # The agent opens it from the inbox's API.
    status, body, _ = await files.agent_get(f"/v1/conversations/{cid}/messages")
    assert status == 200
    listed = next(m for m in json.loads(body)["messages"] if m["seq"] == receipt["seq"])
    assert [(a["name"], a["fetchable"]) for a in listed["attachments"]] == [
        ("screen shot.png", True)
    ]
    path = f"/v1/conversations/{cid}/messages/{receipt['seq']}/attachments/0"
    status, content, ctype = await files.agent_get(path)
    assert (status, content, ctype) == (200, PNG, "image/png")


async def test_a_pdf_is_kept_and_a_retry_stores_it_once(files: Files) -> None:
    v, conversation = await _with_agent(files.web)
    first = await files.upload(v.token, PDF, client_id="doc-1", name="invoice.pdf")
    again = await files.upload(v.token, PDF, client_id="doc-1", name="invoice.pdf")
    assert (first.status, again.status) == (201, 200)
    assert (await again.json())["duplicate"] is True
    messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
    with_files = [m for m in messages if m.attachments]
    assert len(with_files) == 1
    (attachment,) = with_files[0].attachments
    assert (attachment.kind, attachment.mime_type, attachment.name) == (
        "file", "application/pdf", "invoice.pdf")  # fmt: skip
    path = f"/v1/conversations/{conversation.id}/messages/{with_files[0].seq}/attachments/0"
    status, content, ctype = await files.agent_get(path)
    assert (status, content) == (200, PDF)
    assert ctype == "application/octet-stream"  # offered as a download, never rendered


async def test_erasing_the_visitor_erases_their_files(files: Files) -> None:
    v, conversation = await _with_agent(files.web)
    resp = await files.upload(v.token, PNG)
    seq = (await resp.json())["seq"]
    ref = (await _kept_attachment(files.web, conversation, seq)).ref or ""
    store = files.web.bot.store
    file_id = int(ref.removeprefix("kept:"))
    assert (await store.customer_file(file_id)) is not None
    deleted = await store.forget_contact("web", conversation.key)
    assert deleted.conversations == 1
    assert await store.customer_file(file_id) is None
    path = f"/v1/conversations/{conversation.id}/messages/{seq}/attachments/0"
    status, _, _ = await files.agent_get(path)
    assert status == 404  # the conversation is gone with it


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"<html><script>alert(1)</script></html>", {}, 415, "unsupported_file"),
        (b"GIF8", {}, 415, "unsupported_file"),  # too short to be a picture
        (b"MZ\x90\x00" + b"\x00" * 100, {}, 415, "unsupported_file"),  # a program
        (b"", {}, 400, "empty_file"),
        (zlib.compress(PNG), {"Content-Encoding": "deflate"}, 415, "unsupported_encoding"),
    ],
)
async def test_what_is_not_a_picture_or_a_pdf_is_refused(
    files: Files, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    v, _ = await _with_agent(files.web)
    before = await files.web.history(v.token or "")
    resp = await files.upload(v.token, body, **headers)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"] == code
    assert await files.web.history(v.token or "") == before  # nothing stored


async def test_refusals_before_the_file_is_read(files: Files) -> None:
    # No person on the conversation: the bot cannot read files, so none is taken.
    v = await files.web.visitor()
    await v.send("hello", "m1")
    await v.until(reply_to(1))
    resp = await files.upload(v.token, PNG)
    assert resp.status == 409 and (await resp.json())["error"] == "no_agent"
    assert "ask for one" in (await resp.json())["message"]
    # Nor before the visitor wrote anything (no conversation yet).
    fresh = await files.web.visitor()
    assert (await files.upload(fresh.token, PNG)).status == 409
    v2, _ = await _with_agent(files.web)
    assert (await files.upload(None, PNG)).status == 401
    assert (await files.upload("forged.token", PNG)).status == 401
    for client_id in ("", "a/b", "x" * 65, "ü", "abc\n"):
        resp = await files.upload(v2.token, PNG, client_id=client_id)
        assert resp.status == 400 and (await resp.json())["error"] == "bad_client_id"
    foreign = {"Origin": "https://evil.example", "Authorization": f"Bearer {v2.token}"}
    other = await files.web.client.post(
        "/api/files", params={"client_id": "f9"}, data=PNG, headers=foreign
    )
    assert other.status == 403


async def test_a_file_over_the_limit_is_refused_while_it_arrives(tmp_path: Path) -> None:
    async for files in _files(tmp_path, max_file_bytes=1024):
        v, _ = await _with_agent(files.web)
        big = PNG + b"\x00" * 2000
        resp = await files.upload(v.token, big)
        assert resp.status == 413 and (await resp.json())["error"] == "too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            yield PNG
            for _ in range(10):
                yield b"\x00" * 500

        resp = await files.upload(v.token, chunked())
        assert resp.status == 413
        assert (await files.upload(v.token, PNG)).status == 201  # within the limit


async def test_files_can_be_turned_off_and_are_rate_limited(tmp_path: Path) -> None:
    async for files in _files(tmp_path, max_file_bytes=0):
        v, _ = await _with_agent(files.web)
        assert v.frames[0]["max_file_bytes"] == 0
        resp = await files.upload(v.token, PNG)
        assert resp.status == 403 and (await resp.json())["error"] == "files_disabled"
    async for files in _files(tmp_path / "limited", file_rate={"rate": 0.01, "burst": 2}):
        v, _ = await _with_agent(files.web)
        codes = [(await files.upload(v.token, PNG, client_id=f"f{i}")).status for i in range(3)]
        assert codes == [201, 201, 429]


async def test_only_a_new_file_costs_file_rate(tmp_path: Path) -> None:
    # One file per client IP, near enough for ever.
    async for files in _files(tmp_path, file_rate={"rate": 0.001, "burst": 1}):
        bot_only = await files.web.visitor()
        for _ in range(3):  # refused before the body: no file was taken
            assert (await files.upload(bot_only.token, PNG)).status == 409
        v, _ = await _with_agent(files.web)
        first = await files.upload(v.token, PNG, client_id="f1")
        assert first.status == 201, await first.text()
        again = await files.upload(v.token, PNG, client_id="f1")  # its answer was lost
        assert again.status == 200 and (await again.json())["duplicate"] is True
        refused = await files.upload(v.token, PNG, client_id="f2")
        assert refused.status == 429 and (await refused.json())["error"] == "rate_limited"
    # A flood of refused requests still meets the client IP's request rate.
    async for files in _files(tmp_path / "flood", ip_rate={"rate": 0.001, "burst": 3}):
        token = await files.web.session()
        codes = [(await files.upload(token, PNG)).status for _ in range(4)]
        assert codes == [409, 409, 409, 429]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        # controls and a bidi override go; the content's extension is added
        ("a\x00b\x1b[31mc\u202egnp.exe", "ab[31mcgnp.exe.png"),
        ("page.html", "page.html.png"),  # never saved as what the visitor says it is
        ("Screenshot.PNG", "Screenshot.PNG"),
        ("x" * 500 + ".png", "x" * 196 + ".png"),  # cut, keeping the extension
        ("   ", "file.png"),
        ("\ud800.png", "file.png"),
        ("...", "file.png"),
        (None, "file.png"),
        (PERSIAN, PERSIAN),  # a zero-width non-joiner belongs in it
    ],
)
async def test_hostile_file_names_are_cleaned(files: Files, name: str | None, shown: str) -> None:
    v, _ = await _with_agent(files.web)
    resp = await files.upload(v.token, PNG, name=name)
    assert resp.status == 201, await resp.text()
    frame = await v.until(lambda f: f.get("attachments"))
    assert frame["attachments"][0]["name"] == shown


async def test_a_kept_file_opens_only_in_its_own_conversation() -> None:
    class Kept:
        async def customer_file(self, file_id: int) -> Any:
            @dataclass
            class Row:
                conversation_id: int
                data: bytes

            return Row(7, b"secret") if file_id == 3 else None

    customer_files = CustomerFiles({}, kept=Kept())
    kept = Attachment(kind="image", ref="kept:3")
    assert customer_files.can_fetch("web", kept)
    assert await customer_files.fetch("web", kept, conversation_id=7) == b"secret"
    for conversation_id, ref in ((8, "kept:3"), (7, "kept:4")):
        with pytest.raises(FileUnavailableError):
            await customer_files.fetch(
                "web", Attachment(kind="image", ref=ref), conversation_id=conversation_id
            )
    for ref in ("kept:0", "kept:03", "kept:-1", "kept:1e3", "kept:", "KEPT:3", "kept:3 "):
        # Not a kept file's ref: a platform handle, and no connector here fetches those.
        assert not customer_files.can_fetch("web", Attachment(kind="image", ref=ref))


async def test_a_pdf_that_is_also_a_page_is_saved_as_a_pdf(files: Files) -> None:
    # A polyglot: a PDF reader and a browser both open it; its name must not pick the
    # browser on the agent's computer.
    polyglot = b"%PDF-1.4\n<html><script>alert(document.cookie)</script></html>\n%%EOF\n"
    v, conversation = await _with_agent(files.web)
    resp = await files.upload(v.token, polyglot, name="invoice.html")
    assert resp.status == 201, await resp.text()
    seq = (await resp.json())["seq"]
    attachment = await _kept_attachment(files.web, conversation, seq)
    assert (attachment.name, attachment.mime_type) == ("invoice.html.pdf", "application/pdf")
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{files.api}/v1/conversations/{conversation.id}/messages/{seq}/attachments/0",
            headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
        ) as download,
    ):
        assert download.status == 200
        assert download.content_type == "application/octet-stream"
        disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith(".html.pdf")


async def test_a_conversation_takes_a_limited_number_of_files(tmp_path: Path) -> None:
    async for files in _files(tmp_path, files_per_conversation=2):
        v, conversation = await _with_agent(files.web)
        codes = [(await files.upload(v.token, PNG, client_id=f"f{i}")).status for i in range(3)]
        assert codes == [201, 201, 409]
        full = await files.upload(v.token, PNG, client_id="f9")
        assert (await full.json())["error"] == "file_limit"
        again = await files.upload(v.token, PNG, client_id="f0")  # a retry is answered
        assert again.status == 200 and (await again.json())["duplicate"] is True
        messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
        assert len([m for m in messages if m.attachments]) == 2


async def _start_upload(
    files: Files, token: str, client_id: str, sent: bytes, length: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Begin an upload of ``length`` bytes and send only ``sent`` of them (a stalled
    client); returns the socket."""
    server = files.web.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST /api/files?client_id={client_id} HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
        + sent
    )
    await writer.drain()
    return reader, writer


async def _reading(files: Files, count: int = 1) -> None:
    """Wait until the server is reading ``count`` uploads (it counts them from then)."""
    uploads = files.web.connector.service.open_uploads
    async with asyncio.timeout(30):
        while uploads.total() < count:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)


async def test_a_stalled_upload_is_dropped_and_uploads_at_once_are_limited(
    tmp_path: Path,
) -> None:
    async for files in _files(tmp_path, file_read_timeout_s=0.5, uploads_per_ip=1):
        v, conversation = await _with_agent(files.web)
        stalled, writer = await _start_upload(files, v.token or "", "slow", PNG, 4096)
        await _reading(files)  # the server has started reading it
        busy = await files.upload(v.token, PNG, client_id="other")
        assert busy.status == 429 and busy.headers["Retry-After"] == "5"
        body = await busy.json()
        assert (body["error"], body["retry_after"]) == ("too_many_uploads", 5.0)
        head = await asyncio.wait_for(stalled.read(1024), 30)
        assert head.startswith(b"HTTP/1.1 408") and b"upload_timeout" in head
        writer.close()
        # Its slot is free again, and nothing of it was kept.
        assert (await files.upload(v.token, PNG, client_id="other")).status == 201
        messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
        assert len([m for m in messages if m.attachments]) == 1


async def test_a_trickling_upload_is_dropped_long_before_the_read_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client sending a byte now and then held its upload place for the whole read
    # timeout (300 s). Held to 1,000 bytes a second after a 0.5 s slow start, one that
    # sent 100 bytes and stops is dropped at about 0.6 s, not after 300 s.
    monkeypatch.setattr(connectors.web.files, "SLOW_START_S", 0.5)
    limits = {"file_read_timeout_s": 300, "file_min_bytes_per_s": 1000, "uploads_per_ip": 1}
    async for files in _files(tmp_path, **limits):
        v, conversation = await _with_agent(files.web)
        sent = PNG + b"\x00" * (100 - len(PNG))
        trickle, writer = await _start_upload(files, v.token or "", "slow", sent, 50_000)
        head = await asyncio.wait_for(trickle.read(1024), 30)
        writer.close()
        assert head.startswith(b"HTTP/1.1 408") and b"upload_too_slow" in head
        assert (await files.upload(v.token, PNG, client_id="other")).status == 201
        messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
        assert [len(m.attachments) for m in messages if m.attachments] == [1]


async def test_an_upload_above_the_minimum_rate_is_kept_however_long_it_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,000 bytes every 0.1 s (10 kB/s) against a 200 bytes/s minimum (a margin no load
    # eats), for longer than the slow start: the rule must not drop a slow but steady
    # upload.
    monkeypatch.setattr(connectors.web.files, "SLOW_START_S", 0.2)
    async for files in _files(tmp_path, file_min_bytes_per_s=200):
        v, conversation = await _with_agent(files.web)
        parts = [PNG + b"\x00" * (1000 - len(PNG))] + [b"\x00" * 1000] * 9
        upload, writer = await _start_upload(files, v.token or "", "steady", parts[0], 10_000)
        for part in parts[1:]:
            await asyncio.sleep(0.1)
            writer.write(part)
            await writer.drain()
        head = await asyncio.wait_for(upload.read(1024), 30)
        writer.close()
        assert head.startswith(b"HTTP/1.1 201"), head
        messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
        (kept,) = [m for m in messages if m.attachments]
        assert kept.attachments[0].size == 10_000


async def test_a_file_that_arrives_after_the_agent_left_is_refused(files: Files) -> None:
    v, conversation = await _with_agent(files.web)
    upload, writer = await _start_upload(files, v.token or "", "late", PNG, len(PNG) + 100)
    await _reading(files)
    await _release(files, conversation)
    writer.write(b"\x00" * 100)  # the rest of the file
    head = await asyncio.wait_for(upload.read(1024), 30)
    writer.close()
    assert head.startswith(b"HTTP/1.1 409") and b"no_agent" in head
    messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
    assert not [m for m in messages if m.attachments]


async def test_a_text_message_under_the_same_client_id_does_not_take_the_files_place(
    files: Files,
) -> None:
    v, conversation = await _with_agent(files.web)
    await v.send("here it comes", "same-id")
    resp = await files.upload(v.token, PNG, client_id="same-id")
    assert resp.status == 201
    frame = await v.until(lambda f: f.get("attachments"))
    assert frame["client_id"] == "same-id"
    messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
    same_id = [m for m in messages if (m.idempotency_key or "").endswith("/same-id")]
    assert [(m.text, len(m.attachments)) for m in same_id] == [("here it comes", 0), ("", 1)]


async def test_a_files_delivery_key_is_no_other_users_message_key(files: Files) -> None:
    # User "alice/file" writing under client id "x" and user "alice" sending a file under
    # "x": with keys "<key>/file/<client id>" both were "u:alice/file/x", and alice's file
    # was answered as a duplicate of the other user's message (and lost).
    other = await files.web.visitor(user_id="alice/file", user_hash=user_hash("alice/file", SECRET))
    await other.send("hello", "x")
    await other.until(reply_to(1))
    alice = {"user_id": "alice", "user_hash": user_hash("alice", SECRET)}
    v, conversation = await _with_agent(files.web, **alice)
    resp = await files.upload(v.token, PNG, client_id="x")
    assert resp.status == 201, await resp.text()
    attachment = await _kept_attachment(files.web, conversation, (await resp.json())["seq"])
    assert attachment.mime_type == "image/png"


async def test_a_retry_is_described_as_the_file_first_kept(files: Files) -> None:
    # The first upload's file was kept but its message was not stored (the store failed
    # in between); the retry sends other bytes under the same client id. The message
    # must describe the bytes the agent will get: the first upload's.
    v, conversation = await _with_agent(files.web)
    first = await files.web.bot.keep_file(
        "web", conversation.key, client_id="r1", name="invoice.pdf",
        media_type="application/pdf", data=PDF,
    )  # fmt: skip
    # The core's own answer to a retry that reaches it (the upload's check came first).
    again = await files.web.bot.keep_file(
        "web", conversation.key, client_id="r1", name="screen.png",
        media_type="image/png", data=PNG,
    )  # fmt: skip
    assert again == first and (again.name, again.size) == ("invoice.pdf", len(PDF))
    resp = await files.upload(v.token, PNG, client_id="r1", name="screen.png")
    assert resp.status == 201, await resp.text()
    seq = (await resp.json())["seq"]
    attachment = await _kept_attachment(files.web, conversation, seq)
    assert (attachment.name, attachment.mime_type, attachment.size, attachment.kind) == (
        "invoice.pdf", "application/pdf", len(PDF), "file")  # fmt: skip
    path = f"/v1/conversations/{conversation.id}/messages/{seq}/attachments/0"
    assert (await files.agent_get(path))[:2] == (200, PDF)


async def test_uploads_at_once_and_bytes_per_hour_are_bounded(tmp_path: Path) -> None:
    # All clients together: one file at a time here (memory holds each until stored).
    async for files in _files(tmp_path, uploads_at_once=1, uploads_per_ip=4):
        v, _ = await _with_agent(files.web)
        _, writer = await _start_upload(files, v.token or "", "slow", PNG, 4096)
        await _reading(files)
        busy = await files.upload(v.token, PNG, client_id="other")
        assert busy.status == 503 and busy.headers["Retry-After"] == "5"
        assert (await busy.json())["error"] == "busy"
        assert (await busy.json())["retry_after"] == 5.0
        writer.close()
    # What one address may keep per hour: two 600-byte files fit in 1,300 bytes, a
    # third does not (and is not kept).
    budget = {"max_file_bytes": 1024, "file_bytes_per_ip_hour": 1300}
    async for files in _files(tmp_path / "budget", **budget):
        v, conversation = await _with_agent(files.web)
        picture = PNG + b"\x00" * (600 - len(PNG))
        codes = [(await files.upload(v.token, picture, client_id=f"b{i}")).status
                 for i in range(3)]  # fmt: skip
        assert codes == [201, 201, 429]
        messages = await files.web.bot.store.messages_after("web", conversation.key, 0, 100)
        assert len([m for m in messages if m.attachments]) == 2


async def test_a_refused_upload_costs_nothing_of_the_hourly_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The budget bounds what one address fills the disk with: uploads the store failed
    # to keep (503, retry) must not use it up, or the retries that follow are refused.
    budget = {"max_file_bytes": 1024, "file_bytes_per_ip_hour": 1300}
    async for files in _files(tmp_path, **budget):
        v, _ = await _with_agent(files.web)
        store = files.web.bot.store
        failures = [StoreError("disk full")] * 2

        async def failing_twice(
            *args: Any,
            keep: Any = store.keep_customer_file,
            failures: list[StoreError] = failures,
            **kwargs: Any,
        ) -> Any:
            if failures:
                raise failures.pop()
            return await keep(*args, **kwargs)

        monkeypatch.setattr(store, "keep_customer_file", failing_twice)
        picture = PNG + b"\x00" * (600 - len(PNG))
        codes = [(await files.upload(v.token, picture, client_id=f"b{i}")).status
                 for i in range(3)]  # fmt: skip
        assert codes == [503, 503, 201]
        assert (await files.upload(v.token, picture, client_id="b3")).status == 201


def test_an_hourly_budget_below_one_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file_bytes_per_ip_hour"):
        web_settings(tmp_path / "x.db", {"max_file_bytes": 2048, "file_bytes_per_ip_hour": 1000})


async def test_a_retry_is_answered_before_its_body_even_after_the_agent_left(
    files: Files,
) -> None:
    # The client lost the 201 and retries once the conversation went back to the bot:
    # the file and its message are stored, so it gets the same answer (no "no agent").
    v, conversation = await _with_agent(files.web)
    first = await files.upload(v.token, PNG, client_id="lost")
    assert first.status == 201
    await _release(files, conversation)
    again = await files.upload(v.token, b"", client_id="lost")  # nothing needs re-sending
    assert again.status == 200, await again.text()
    assert await again.json() == {**await first.json(), "duplicate": True}


async def test_a_full_conversation_refuses_an_upload_before_its_body(tmp_path: Path) -> None:
    async for files in _files(tmp_path, files_per_conversation=1):
        v, _ = await _with_agent(files.web)
        assert (await files.upload(v.token, PNG, client_id="one")).status == 201
        # Headers only, the body never comes: answered at once, not after the timeout.
        reader, writer = await _start_upload(files, v.token or "", "two", b"", 4096)
        head = await asyncio.wait_for(reader.read(1024), 30)
        writer.close()
        assert head.startswith(b"HTTP/1.1 409") and b"file_limit" in head
