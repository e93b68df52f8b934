"""An agent's message sent with an ``Idempotency-Key`` is stored and delivered once: a
retry after a timeout gets the first message back (200, ``duplicate``), even one racing
the first try. Real bot, real HTTP client."""

from __future__ import annotations

import asyncio

from core_helpers import Api, ApiBot, message, recorder


async def _post(api: Api, cid: int, key: str | None, text: str) -> tuple[int, dict]:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await api.call(
        "POST", f"/v1/conversations/{cid}/messages",
        json={"text": text, "agent": "Ana"}, headers=headers,
    )  # fmt: skip


async def _agent_messages(api: Api) -> list[str]:
    stored = await api.bot.store.messages_after("test", "c1", 0, 100)
    return [m.text for m in stored if m.agent is not None]


async def test_a_retried_message_is_stored_and_delivered_once(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        before = len(recorder(api.bot).replies)
        status, first = await _post(api, cid, "retry-1", "Your parcel ships today.")
        assert status == 201 and first["duplicate"] is False, first
        status, again = await _post(api, cid, "retry-1", "Your parcel ships today.")
        assert status == 200 and again["duplicate"] is True, again
        assert again["message"] == first["message"]
        assert len(recorder(api.bot).replies) == before + 1
        assert await _agent_messages(api) == ["Your parcel ships today."]
        # Another key, or none, is another message.
        assert (await _post(api, cid, "retry-2", "Anything else?"))[0] == 201
        assert (await _post(api, cid, None, "Anything else?"))[0] == 201
        assert len(recorder(api.bot).replies) == before + 3
        # A key is the conversation's: the same one elsewhere is a new message.
        await api.bot.submit(message("/human", "o1", conversation="c2"))
        assert await api.bot.drain(30)
        other = await api.conversation_id("c2")
        assert (await _post(api, other, "retry-1", "Hello there."))[0] == 201


async def test_retries_racing_the_first_try_deliver_once(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        before = len(recorder(api.bot).replies)
        answers = await asyncio.gather(
            *(_post(api, cid, "same", "One moment, please.") for _ in range(5))
        )
        assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 201]
        assert len({body["message"]["seq"] for _, body in answers}) == 1
        assert len(recorder(api.bot).replies) == before + 1


async def test_a_key_that_cannot_be_one_is_refused(api_bot: ApiBot) -> None:
    async with api_bot() as api:
        cid = await api.handed_off()
        status, body = await _post(api, cid, "k" * 201, "Hi")
        assert (status, body["kind"]) == (422, "invalid"), body
        assert "idempotency key" in body["error"]
