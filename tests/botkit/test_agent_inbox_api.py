"""Agents' own tokens, the queue's previews, attachments, and serving the inbox page.

The same harness as test_agent_api.py: a real bot (echo backend, SQLite) with the
hand-off plugin's agent API on a loopback port and a recording channel. The page itself
runs in Chromium in test_agent_inbox_browser.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import TOKEN, Api, ApiBot, RecordingConnector, message, recorder

from botkit.bot import Bot
from botkit.config import Settings
from botkit.errors import ConfigError, ConnectorError
from botkit.events import Attachment, Contact
from botkit.handoff import inbox
from botkit.store import ConversationStatus

ANA = "ana-own-token-0123456789abcdef"
BO = "bo-own-token-0123456789abcdefgh"
AGENTS = {"Ana": ANA, "Bo Li": BO}


async def _hand_off(bot: Bot, *texts: str) -> None:
    for number, text in enumerate((*texts, "/human")):
        await bot.submit(message(text, f"k{number}"))
    assert await bot.drain(30)


async def _messages(api: Api, conversation_id: int) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/v1/conversations/{conversation_id}/messages")
    assert status == 200, body
    return list(body["messages"])


async def test_each_agent_signs_with_their_own_token_and_sends_as_themselves(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot(agents=AGENTS) as api:
        await _hand_off(api.bot, "My parcel is late.")
        assert await api.call("GET", "/v1/me", token=ANA) == (200, {"agent": "Ana"})
        assert await api.call("GET", "/v1/me", token=BO) == (200, {"agent": "Bo Li"})
        assert await api.call("GET", "/v1/me") == (200, {"agent": None})  # the shared one
        cid = await api.conversation_id()
        path = f"/v1/conversations/{cid}/messages"

        status, body = await api.call("POST", path, token=ANA, json={"text": "Ana here."})
        assert status == 201 and body["message"]["agent"] == "Ana", body
        # Nobody writes under another agent's name with their own token.
        before = len(await _messages(api, cid))
        status, body = await api.call(
            "POST", path, token=ANA, json={"text": "Bo here.", "agent": "Bo Li"}
        )
        assert (status, body["kind"]) == (403, "forbidden") and "Ana's" in body["error"]
        assert len(await _messages(api, cid)) == before
        # Their own name, however spaced, is theirs (taking Ana's conversation over).
        status, body = await api.call(
            "POST", path, token=BO,
            json={"text": "Bo too.", "agent": " Bo   Li ", "take_over": True},
        )  # fmt: skip
        assert status == 201 and body["message"]["agent"] == "Bo Li", body
        # The shared token still names the agent in the request.
        status, body = await api.send(cid, text="From the tool.", agent="Zed")
        assert status == 201 and body["message"]["agent"] == "Zed", body

        with caplog.at_level(logging.INFO):
            status, _ = await api.call(
                "POST", f"/v1/conversations/{cid}/release", token=BO, json={"take_over": True}
            )
        assert (
            status == 200 and "given back to the bot by Bo Li (taken over from Zed)" in caplog.text
        )


async def _holder(api: Api, cid: int) -> tuple[str | None, str | None, str | None]:
    """Who has conversation ``cid``, as the queue, the lookup and its messages say."""
    _, listed = await api.call("GET", "/v1/handoffs")
    queued = [c.get("agent") for c in listed["conversations"] if c["id"] == cid]
    _, found = await api.call("GET", "/v1/conversations", params={"channel": "test", "key": "c1"})
    _, page = await api.call("GET", f"/v1/conversations/{cid}/messages")
    return (
        queued[0] if queued else None, found["conversation"]["agent"],
        page["conversation"]["agent"],
    )  # fmt: skip


async def test_the_first_agent_to_answer_has_the_conversation_until_it_goes_back(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with api_bot(agents=AGENTS) as api:
        await _hand_off(api.bot, "My parcel is late.")
        cid = await api.conversation_id()
        path = f"/v1/conversations/{cid}/messages"
        assert await _holder(api, cid) == (None, None, None)  # waiting: nobody has it

        status, _ = await api.call("POST", path, token=ANA, json={"text": "Ana here."})
        assert status == 201
        assert await _holder(api, cid) == ("Ana", "Ana", "Ana")
        # Bo is told who has it; the customer gets nothing from him, nothing is stored.
        sent, before = len(recorder(api.bot).replies), len(await _messages(api, cid))
        status, body = await api.call("POST", path, token=BO, json={"text": "Bo here."})
        assert (status, body["kind"], body["agent"]) == (409, "taken", "Ana"), body
        assert "Ana has conversation" in body["error"] and "take it over" in body["error"]
        assert len(recorder(api.bot).replies) == sent
        assert len(await _messages(api, cid)) == before
        status, _ = await api.call("POST", path, token=ANA, json={"text": "Still Ana."})
        assert status == 201

        # Taking it over explicitly makes it Bo's; now Ana is the one refused.
        with caplog.at_level(logging.INFO):
            status, body = await api.call(
                "POST", path, token=BO, json={"text": "Bo takes it.", "take_over": True}
            )
        assert status == 201 and body["message"]["agent"] == "Bo Li", body
        assert "taken over from Ana by Bo Li" in caplog.text
        assert await _holder(api, cid) == ("Bo Li", "Bo Li", "Bo Li")
        status, body = await api.call("POST", path, token=ANA, json={"text": "Ana again."})
        assert (status, body["kind"], body["agent"]) == (409, "taken", "Bo Li"), body
        assert [r.text for r in recorder(api.bot).replies[-3:]] == [
            "Ana here.", "Still Ana.", "Bo takes it.",
        ]  # fmt: skip

        # The shared token is never refused; the name it gives has the conversation.
        status, _ = await api.send(cid, text="From the tool.", agent="Zed")
        assert status == 201
        assert await _holder(api, cid) == ("Zed", "Zed", "Zed")

        # Given back, nobody has it; the next hand-off is whoever answers first.
        status, body = await api.call(
            "POST", f"/v1/conversations/{cid}/release", token=ANA, json={"take_over": True}
        )
        assert status == 200 and body["conversation"]["agent"] is None
        assert (await _holder(api, cid))[1:] == (None, None)
        await api.bot.submit(message("/human", "k9"))
        assert await api.bot.drain(30)
        assert await _holder(api, cid) == (None, None, None)
        status, _ = await api.call("POST", path, token=ANA, json={"text": "Ana, once more."})
        assert status == 201 and await _holder(api, cid) == ("Ana", "Ana", "Ana")


async def test_two_agents_answering_at_once_reach_the_customer_once(api_bot: ApiBot) -> None:
    async with api_bot(agents=AGENTS) as api:
        await _hand_off(api.bot, "My parcel is late.")
        cid = await api.conversation_id()
        path = f"/v1/conversations/{cid}/messages"
        sent = len(recorder(api.bot).replies)
        results = await asyncio.gather(
            *(api.call("POST", path, token=token, json={"text": f"Hi, {token[:3]} here."})
              for token in (ANA, BO))
        )  # fmt: skip
        assert sorted(status for status, _ in results) == [201, 409], results
        (winner,) = [body["message"]["agent"] for status, body in results if status == 201]
        (refused,) = [body for status, body in results if status == 409]
        assert (refused["kind"], refused["agent"]) == ("taken", winner)
        assert len(recorder(api.bot).replies) == sent + 1
        agents = [m["agent"] for m in await _messages(api, cid) if m["agent"] is not None]
        assert agents == [winner]


async def test_agents_tokens_alone_open_the_api(api_bot: ApiBot) -> None:
    async with api_bot(api_token=None, agents={"Ana": ANA}) as api:
        await _hand_off(api.bot)
        assert (await api.call("GET", "/v1/handoffs"))[0] == 401  # no shared token now
        status, listed = await api.call("GET", "/v1/handoffs", token=ANA)
        assert status == 200 and len(listed["conversations"]) == 1
        for wrong in (ANA[:-1], ANA + "x", BO, ANA.upper()):
            assert (await api.call("GET", "/v1/me", token=wrong))[0] == 401


@pytest.mark.parametrize(
    ("agents", "extra", "words"),
    [
        ({"Ana": "short-token"}, {}, "at least 24"),
        ({"Ana": ANA + " x"}, {}, "RFC 6750"),
        ({"Ana": ANA + "\n"}, {}, "RFC 6750"),
        ({"Ana": ANA, "Bo": ANA}, {}, "token of its own"),
        ({"Ana": TOKEN}, {}, "token of its own"),
        ({"Ana": ANA, "ANA": BO}, {}, "agent 2 ('ANA') has the name of agent 1 ('Ana')"),
        ({"Ana": ANA, " Ana ": BO}, {}, "has the name of agent 1"),
        ({"": ANA}, {}, "1-100 characters"),
        ({"   ": ANA}, {}, "1-100 characters"),
        ({"a" * 101: ANA}, {}, "1-100 characters"),
        ({"Ana\u200b\u0007": ANA}, {}, "printable"),
        # The table the wrong way round: the tokens are names, and never echoed.
        ({ANA: "Ana"}, {}, "agent 1 looks written the wrong way round: the table is name"),
        ({ANA + ANA + ANA + ANA: "Ana"}, {}, "agent 1: the name must be 1-100"),
        ({}, {"api_token": None}, "needs api_token or agents"),
    ],
)
def test_bad_agents_are_refused_with_the_key_path(
    make_settings: Callable[..., Settings], agents: dict[str, str], extra: dict[str, Any],
    words: str,
) -> None:  # fmt: skip
    config = {"api_listen": "127.0.0.1:8090", "api_token": TOKEN, "agents": agents, **extra}
    with pytest.raises(ConfigError) as err:
        make_settings(plugins={"handoff": config})
    assert "plugins.handoff" in str(err.value) and words in str(err.value)
    for token in (ANA, BO, TOKEN):
        assert token not in str(err.value)  # a token is never echoed


async def test_the_queue_shows_who_waits_and_what_they_last_asked(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        bot = api.bot
        maria = Contact("test", "u-maria", "María Pérez")
        for number, text in enumerate(("Hi", "My card was charged twice.", "/human")):
            sent = dataclasses.replace(message(text, f"m{number}"), contact=maria)
            await bot.submit(sent)
        assert await bot.drain(30)  # c1 waits first
        await bot.submit(message("/agent", "anon", conversation="c2", user="u2"))
        assert await bot.drain(30)
        status, listed = await api.call("GET", "/v1/handoffs?order=oldest")
        assert status == 200
        seen = [(c["key"], c["customer_name"], c["last_customer_text"])
                for c in listed["conversations"]]  # fmt: skip
        assert seen == [("c1", "María Pérez", "My card was charged twice."), ("c2", None, None)]


async def test_messages_carry_the_files_customers_sent(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        await _hand_off(api.bot)
        photo = Attachment("image", "receipt.jpg", "image/jpeg", 2048, "https://files.example/r")
        with_photo = dataclasses.replace(message("", "photo"), attachments=(photo,))
        replies = len(recorder(api.bot).replies)
        await api.bot.submit(with_photo)
        assert await api.bot.drain(30)
        # The agent sees the photo: the bot does not say it can only read text.
        assert len(recorder(api.bot).replies) == replies
        newest = (await _messages(api, await api.conversation_id()))[-1]
        assert (newest["text"], newest["attachments"]) == ("", [
            {"kind": "image", "name": "receipt.jpg", "mime_type": "image/jpeg", "size": 2048,
             "url": "https://files.example/r", "fetchable": False},
        ])  # fmt: skip


async def _get(api: Api, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
    async with api.session.get(api.base + path, allow_redirects=False, **kw) as response:
        return response.status, dict(response.headers), await response.text()


async def test_the_inbox_page_is_served_without_a_token_and_holds_no_data(
    api_bot: ApiBot,
) -> None:
    async with api_bot() as api:
        await _hand_off(api.bot, "secret order 4711")
        status, headers, _ = await _get(api, "/inbox")
        assert (status, headers["Location"]) == (308, "inbox/")  # relative: works under a prefix
        status, headers, page = await _get(api, "/inbox/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        csp = headers["Content-Security-Policy"]
        for directive in ("script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'",
                          "base-uri 'none'"):  # fmt: skip
            assert directive in csp
        assert "'unsafe-inline'" not in csp and headers["X-Content-Type-Options"] == "nosniff"
        assert '<script src="inbox.js" defer>' in page and "4711" not in page
        for name, kind in (("inbox.js", "text/javascript"), ("inbox.css", "text/css")):
            status, headers, body = await _get(api, "/inbox/" + name)
            assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert (await _get(api, "/inbox/inbox.html"))[0] == 404
        assert (await _get(api, "/inbox/..%2fv1%2fhandoffs"))[0] == 404

        # The API's answers are never cached: they are customers' conversations.
        async with api.session.get(
            api.base + "/v1/handoffs", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.headers["Cache-Control"] == "no-store"
        assert (await _get(api, "/v1/handoffs"))[1]["Cache-Control"] == "no-store"  # 401


@pytest.mark.parametrize(
    "target",
    ["/inbox/../v1/handoffs", "/inbox/%2e%2e/v1/handoffs", "/inbox/./../v1/handoffs",
     "//inbox/../v1/handoffs", "/inbox/..%2F..%2Fv1/handoffs"],
)  # fmt: skip
async def test_no_spelling_of_a_path_reaches_the_api_through_the_inbox(
    api_bot: ApiBot, target: str
) -> None:
    async with api_bot() as api:
        await _hand_off(api.bot, "secret order 4711")
        assert api.base.startswith("http://127.0.0.1:")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(api.base.split(":")[-1]))
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = (await asyncio.wait_for(reader.read(), 10)).decode("utf-8", "replace")
        writer.close()
        assert "4711" not in answer and "conversations" not in answer
        assert answer.split()[1] in ("400", "401", "404"), answer[:200]


async def test_the_inbox_can_be_turned_off(api_bot: ApiBot) -> None:
    async with api_bot(inbox=False) as api:
        assert (await _get(api, "/inbox/"))[0] == 401


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8090/inbox/"),
        ("0.0.0.0", "http://127.0.0.1:8090/inbox/"),
        ("::", "http://[::1]:8090/inbox/"),
        ("::1", "http://[::1]:8090/inbox/"),
        ("agents.internal", "http://agents.internal:8090/inbox/"),
    ],
)
def test_the_log_names_where_agents_open_the_inbox(host: str, url: str) -> None:
    assert inbox.url(host, 8090) == url


async def test_starting_says_where_the_inbox_is(
    api_bot: ApiBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        async with api_bot() as api:
            assert f"agents' inbox at {api.base}/inbox/" in caplog.text
            assert await _status_of(api) is None


async def _status_of(api: Api) -> ConversationStatus | None:
    conversation = await api.bot.store.get_conversation("test", "c1")
    return None if conversation is None else conversation.status


class FileKeepingConnector(RecordingConnector):
    """The "test" channel, able to give the files its customers sent (by ``ref``)."""

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.files: dict[str, bytes] = {}

    async def fetch_file(self, ref: str, *, max_bytes: int) -> bytes:
        if ref not in self.files or len(self.files[ref]) > max_bytes:
            raise ConnectorError(f"test: no file {ref}")
        return self.files[ref]


async def _files_message(api: Api, *files: Attachment) -> int:
    """The seq of a customer's message carrying ``files``, sent while an agent waits."""
    await _hand_off(api.bot)
    await api.bot.submit(dataclasses.replace(message("", "files"), attachments=files))
    assert await api.bot.drain(30)
    return (await _messages(api, await api.conversation_id()))[-1]["seq"]


async def test_agents_open_the_files_customers_sent(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        channel = FileKeepingConnector(api.bot)
        api.bot.attach_connector(channel)
        jpeg = b"\xff\xd8\xff\xe0" + b"photo" * 100
        page = b"<html><script>alert(document.domain)</script></html>"
        channel.files |= {"ph-1": jpeg, "doc-1": page}
        seq = await _files_message(
            api,
            Attachment("image", None, "image/jpeg", len(jpeg), ref="ph-1"),
            # A "picture" that is a web page, named to break out of the header.
            Attachment("file", 'x"; filename=evil.html\r\nX-A: 1', "text/html", ref="doc-1"),
            Attachment("sticker"),  # nothing to fetch it with
            Attachment("file", "gone.pdf", "application/pdf", ref="deleted"),
        )
        cid = await api.conversation_id()
        shown = (await _messages(api, cid))[-1]["attachments"]
        assert [a["fetchable"] for a in shown] == [True, True, False, True]

        base = f"{api.base}/v1/conversations/{cid}/messages/{seq}/attachments/"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with api.session.get(base + "0", headers=auth) as response:
            assert response.status == 200 and await response.read() == jpeg
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.headers["Content-Disposition"].startswith("inline")
            assert "sandbox" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with api.session.get(base + "1", headers=auth) as response:
            # Never served as a page: an opaque download, whatever its type says.
            assert response.status == 200 and await response.read() == page
            assert response.headers["Content-Type"] == "application/octet-stream"
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment; filename*=UTF-8''")
            assert (
                '"' not in disposition
                and "\r" not in disposition
                and "X-A" not in (response.headers)
            )
        for index, status, kind in (("2", 404, "unavailable"), ("3", 502, "unavailable"),
                                    ("4", 404, None)):  # fmt: skip
            got, body = await api.call(
                "GET", f"/v1/conversations/{cid}/messages/{seq}/attachments/{index}"
            )
            assert (got, body.get("kind")) == (status, kind), body
        assert (await api.call("GET", f"/v1/conversations/{cid}/messages/999/attachments/0"))[
            0
        ] == 404
        assert (await api.call("GET", f"/v1/conversations/{cid}/messages/{seq}/attachments/0",
                               token=None))[0] == 401  # fmt: skip


async def test_a_channel_that_cannot_fetch_files_says_so(api_bot: ApiBot) -> None:
    async with api_bot() as api:  # the recording channel keeps no files
        seq = await _files_message(api, Attachment("image", ref="ph-1"))
        cid = await api.conversation_id()
        assert (await _messages(api, cid))[-1]["attachments"][0]["fetchable"] is False
        status, body = await api.call(
            "GET", f"/v1/conversations/{cid}/messages/{seq}/attachments/0"
        )
        assert (status, body["kind"]) == (404, "unavailable")


async def test_an_api_beyond_this_machine_is_named_in_a_warning(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    plugin = {"api_listen": "0.0.0.0:0", "api_token": TOKEN}
    with caplog.at_level(logging.INFO):
        async with Bot(make_settings(plugins={"handoff": plugin})):
            pass
    assert "listens on 0.0.0.0, beyond this machine, over plain HTTP" in caplog.text


def test_servers_sharing_a_port_are_refused_before_anything_starts(
    make_settings: Callable[..., Settings],
) -> None:
    plugin = {"api_listen": "0.0.0.0:18095", "api_token": TOKEN}
    with pytest.raises(ConfigError) as err:
        make_settings(plugins={"handoff": plugin}, metrics={"listen": "127.0.0.1:18095"})
    assert "plugins.handoff.api_listen: listens on port 18095, as metrics.listen does" in str(
        err.value
    )
    with pytest.raises(ConfigError) as err:
        make_settings(plugins={"handoff": plugin}, connectors={"web": {"port": 18095}})
    assert "listens on port 18095, as connectors.web.port does" in str(err.value)
    # Another port, another interface, or any free port: fine.
    for listen in ("127.0.0.1:18096", "127.0.0.2:18095"):
        make_settings(plugins={"handoff": {**plugin, "api_listen": listen}},
                      metrics={"listen": "127.0.0.1:18095"})  # fmt: skip
