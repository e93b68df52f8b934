"""A visitor's message is shown before the bot has read it; its language comes after.

The ``message`` frame of a visitor's message goes out the moment it is stored, with
``language: null`` (nothing has detected it yet). Once its reply is stored, an
``update`` frame tells every socket of the conversation the language and status the
store now holds for it: what a replay after a reload shows.
"""

from __future__ import annotations

from web_helpers import WebHarness, reply_to

FRENCH = "Bonjour, je voudrais savoir où est ma commande s'il vous plaît"


async def test_the_visitors_message_gets_its_language_once_answered(web: WebHarness) -> None:
    tab = await web.visitor(lang="en")
    other_tab = await web.visitor(token=tab.token)
    await tab.send(FRENCH, "c1")
    for v in (tab, other_tab):
        echo = await v.until(lambda f: f["type"] == "message" and f["seq"] == 1)
        # Stored and shown before the bot read it: no language yet, honestly.
        assert (echo["language"], echo["status"]) == (None, "received")
        await v.until(reply_to(1))
        update = await v.until(lambda f: f["type"] == "update")
        assert update == {"type": "update", "seq": 1, "language": "fr", "status": "answered"}
    # The same as a replay after a reload says.
    replayed = (await web.history(tab.token))[0]
    assert (replayed["seq"], replayed["language"], replayed["status"]) == (1, "fr", "answered")


async def test_the_update_comes_after_the_reply_on_a_socket_catching_up(
    web: WebHarness,
) -> None:
    """Never an update for a seq the socket has not been sent: the reply comes first
    (filling anything before it from history), then the update."""
    tab = await web.visitor()
    await tab.send(FRENCH, "c1")
    await tab.until(lambda f: f["type"] == "update")
    kinds = [(f["type"], f.get("seq")) for f in tab.frames[1:] if f["type"] != "stream"]
    assert kinds.index(("message", 2)) < kinds.index(("update", 1)), kinds
    assert kinds.index(("message", 1)) < kinds.index(("update", 1)), kinds


# langdetect: fr at p ≈ 0.71 (5/7), es 2/7, under [language] min_confidence 0.8: not a
# detection.
UNCLEAR = "¿Qué métodos de pago aceptan?"


async def test_a_message_whose_language_is_unknown_still_gets_its_update(
    web: WebHarness,
) -> None:
    """The bot could not tell the first message's language (it answers in a fallback
    one): the message is stored with none. The update still comes, with
    ``language: null``, so a live client learns it was answered."""
    tab = await web.visitor()
    await tab.send(UNCLEAR, "c1")
    await tab.until(reply_to(1))
    update = await tab.until(lambda f: f["type"] == "update", limit_s=5)
    assert update == {"type": "update", "seq": 1, "language": None, "status": "answered"}
    replayed = (await web.history(tab.token))[0]
    assert (replayed["seq"], replayed["language"], replayed["status"]) == (1, None, "answered")
