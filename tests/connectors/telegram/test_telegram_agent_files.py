"""What a Telegram customer sends a human agent besides text: photos the agent opens
through the agent API (fetched from the fake Bot API server with getFile and its file
endpoint, as from Telegram), and locations and contacts as text."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from tg_helpers import TOKEN as BOT_TOKEN
from tg_helpers import MakeTg, TgHarness

from botkit.handoff.api import AgentApi
from botkit.store import StoredMessage
from connectors.telegram import texts

TOKEN = "agents-secret-token-0123456789"
HANDOFF = {"handoff": {"api_listen": "127.0.0.1:0", "api_token": TOKEN}}


async def _stored(tg: TgHarness, chat_id: int, count: int) -> list[StoredMessage]:
    """The chat's stored messages, once there are ``count`` (updates are stored as read:
    there is no answer to wait for)."""
    for _ in range(600):  # 30 s
        stored = await tg.bot.store.messages_after("telegram", str(chat_id), 0, 100)
        if len(stored) >= count:
            return stored
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(stored)} of {count} messages stored")


async def _agent_get(tg: TgHarness, path: str) -> tuple[int, bytes, dict[str, str]]:
    api = getattr(tg.bot.plugins.get("handoff"), "api", None)
    assert isinstance(api, AgentApi)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{api.port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


async def test_an_agent_opens_the_photo_a_customer_sent(
    make_tg: MakeTg, caplog: pytest.LogCaptureFixture
) -> None:
    tg = await make_tg(plugins=HANDOFF)
    u = tg.fake.updates
    tg.fake.push(u.message(701, "My parcel arrived broken."), u.message(701, "/human"))
    await tg.wait_answers(2)
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    tg.fake.files["ph800"] = photo  # the largest size of the photo is the one kept
    tg.fake.push(u.photo(701))
    *_, stored = await _stored(tg, 701, 5)
    (attachment,) = stored.attachments
    assert (attachment.kind, attachment.mime_type, attachment.ref) == ("image", "image/jpeg",
                                                                       "ph800")  # fmt: skip
    conversation = await tg.bot.store.get_conversation("telegram", "701")
    assert conversation is not None
    base = f"/v1/conversations/{conversation.id}/messages/{stored.seq}"
    status, body, headers = await _agent_get(tg, base + "/attachments/0")
    assert (status, body, headers["Content-Type"]) == (200, photo, "image/jpeg")
    assert [c.method for c in tg.fake.calls].count("getFile") == 1
    # A file Telegram no longer has, an answer without the file's path, a file host
    # whose error page quotes the URL: the agent is told, and the token stays secret.
    tg.fake.files_without_path.add("ph800")
    assert (await _agent_get(tg, base + "/attachments/0"))[0] == 502
    tg.fake.files_without_path.clear()
    tg.fake.file_host_down = True
    with caplog.at_level(logging.DEBUG):
        status, body, headers = await _agent_get(tg, base + "/attachments/0")
    assert status == 502 and b"unavailable" in body and headers["Cache-Control"] == "no-store"
    secret = BOT_TOKEN.partition(":")[2]
    assert "Not Found" in caplog.text and secret not in caplog.text + body.decode()
    del tg.fake.files["ph800"]
    status, body, _ = await _agent_get(tg, base + "/attachments/0")
    assert status == 502 and b"unavailable" in body
    await tg.settle()
    assert len(tg.answers(701)) == 2  # the photo got no "I can only read text"


async def test_locations_and_contacts_reach_the_agent_as_text(make_tg: MakeTg) -> None:
    tg = await make_tg(plugins=HANDOFF)
    u = tg.fake.updates
    tg.fake.push(u.message(702, "/human"))
    await tg.wait_answers(1)
    tg.fake.push(
        u.message(702, extra={"location": {"latitude": 52.520008, "longitude": 13.404954}}),
        u.message(702, extra={"contact": {"phone_number": "+49 30 1234567",
                                          "first_name": "Ann", "last_name": "Lee"}}),
        u.message(702, extra={"venue": {
            "location": {"latitude": 48.8584, "longitude": 2.2945},
            "title": "Eiffel Tower", "address": "Champ de Mars, Paris"}}),
    )  # fmt: skip
    stored = await _stored(tg, 702, 5)
    texts_stored = [m.text for m in stored[2:]]
    assert texts_stored[0].startswith("📍 52.520008, 13.404954 https://www.openstreetmap.org/")
    assert texts_stored[1] == "👤 Ann Lee: +49 30 1234567"
    assert texts_stored[2].startswith("📍 Eiffel Tower, Champ de Mars, Paris (48.858400, ")
    await tg.settle()
    assert len(tg.answers(702)) == 1
    # With the bot, a location still gets the polite "text only" answer.
    tg.fake.push(u.message(702, "/bot"))
    await tg.wait_answers(2)
    tg.fake.push(u.message(702, extra={"location": {"latitude": 1.0, "longitude": 2.0}}))
    await tg.fake.wait_until(lambda: texts.UNSUPPORTED["en"] in tg.answers(702), 30)


async def test_a_file_too_big_for_bots_is_not_offered(make_tg: MakeTg) -> None:
    tg = await make_tg(plugins=HANDOFF)
    u = tg.fake.updates
    tg.fake.push(u.message(703, "/human"))
    await tg.wait_answers(1)
    video = {
        "file_id": "vid1",
        "file_unique_id": "uv1",
        "width": 1920,
        "height": 1080,
        "duration": 60,
        "mime_type": "video/mp4",
        "file_size": 48 * 1024 * 1024,
    }
    tg.fake.push(u.message(703, extra={"video": video}))  # fmt: skip
    *_, stored = await _stored(tg, 703, 3)
    conversation = await tg.bot.store.get_conversation("telegram", "703")
    assert conversation is not None
    _, body, _ = await _agent_get(tg, f"/v1/conversations/{conversation.id}/messages")
    (shown,) = json.loads(body)["messages"][-1]["attachments"]
    assert (shown["kind"], shown["fetchable"]) == ("video", False)  # over the 20 MB bots get
    path = f"/v1/conversations/{conversation.id}/messages/{stored.seq}/attachments/0"
    assert (await _agent_get(tg, path))[0] == 404
    assert "getFile" not in [c.method for c in tg.fake.calls]
