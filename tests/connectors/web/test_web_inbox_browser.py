"""The agents' inbox end to end, both people in a real headless Chromium.

A customer chats in the web widget (the connector's demo page) and asks for a person;
an agent signs in to the inbox (served by the hand-off plugin's agent API), finds the
conversation in the queue, reads it, answers, sees the customer's next message arrive
and gives the conversation back to the bot. The bot is the real one (echo backend,
temporary SQLite). Screenshots go to build/test-artifacts/inbox/.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from test_web_browser import (  # noqa: F401 (browser: a fixture)
    ARTIFACTS,
    HOSTILE,
    WIDGET,
    browser,
    watched_page,
)
from web_helpers import web_settings

from botkit.bot import Bot
from botkit.errors import ConnectorError
from botkit.events import Attachment, Contact, InboundMessage, OutboundReply
from botkit.handoff.api import AgentApi
from connectors.base import Connector, ConnectorConfig
from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

ANA = "ana-own-token-0123456789abcdef"
TEAM = "team-shared-token-0123456789ab"
SHOTS = ARTIFACTS.parent / "inbox"


@dataclass
class Servers:
    bot: Bot
    widget: str  # the connector's demo page with the widget
    inbox: str  # the agents' inbox


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    db = tmp_path_factory.mktemp("inbox-browser") / "bot.db"
    handoff = {"api_listen": "127.0.0.1:0", "api_token": TEAM, "agents": {"Ana": ANA}}
    settings = web_settings(db, {"port": 0}, plugins={"handoff": handoff})
    async with Bot(settings) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()
        api = getattr(bot.plugins.get("handoff"), "api", None)
        assert isinstance(api, AgentApi) and api.port
        try:
            yield Servers(bot, connector.url + "/", f"http://127.0.0.1:{api.port}/inbox/")
        finally:
            await connector.disconnect()


async def _page(chromium: Any) -> Any:
    return await watched_page(chromium, 1200, 800)


async def _sign_in(agent: Any, token: str) -> None:
    """Give ``token`` on the sign-in form and submit it."""
    await agent.get_by_label("Your agent token").fill(token)
    await agent.get_by_role("button", name="Sign in").click()


async def _signed_in_page(chromium: Any, servers: Servers) -> Any:
    """A page on the inbox, signed in as Ana."""
    agent = await _page(chromium)
    await agent.goto(servers.inbox)
    await _sign_in(agent, ANA)
    return agent


async def _customer_says(pg: Any, text: str, shown: int) -> None:
    """Send ``text`` in the widget and wait until ``shown`` stored messages are shown."""
    if await pg.locator(".botkit-panel").is_hidden():
        await pg.get_by_role("button", name="Open chat").click()
    box = pg.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")
    await pg.wait_for_function(
        f"n => {WIDGET}?.querySelectorAll('.botkit-log [data-seq]').length >= n"
        f" && !{WIDGET}.querySelector('.botkit-streaming, .botkit-pending')",
        arg=shown,
        timeout=10_000,
    )


async def _transcript(pg: Any) -> list[tuple[str, str, str]]:
    """(kind, author line, text) of each message the inbox shows."""
    items: list[list[str]] = await pg.eval_on_selector_all(
        "#messages .message",
        """els => els.map(e => [e.className.replace('message ', ''),
                                e.querySelector('.author').firstChild.textContent.trim(),
                                (e.querySelector('.text') || {textContent: ''}).textContent])""",
    )
    return [(kind, author, text) for kind, author, text in items]


async def test_an_agent_answers_a_customer_from_the_inbox(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    customer = await _page(browser)
    await customer.goto(servers.widget)
    await _customer_says(customer, "Hello, order 4711 has not arrived.", 2)
    await _customer_says(customer, HOSTILE, 4)
    await _customer_says(customer, "/human", 6)

    agent = await _page(browser)
    await agent.goto(servers.inbox)
    await _sign_in(agent, ANA[:-1])
    await agent.get_by_text("That token is not valid.").wait_for()
    await _sign_in(agent, ANA)
    await agent.get_by_text("Signed in as Ana").wait_for()

    # The queue: one customer waiting, with what they last asked (shown as text).
    waiting = agent.locator("#waiting li")
    await waiting.first.wait_for()
    assert await waiting.count() == 1
    assert await waiting.first.locator(".preview").text_content() == HOSTILE
    # A web visitor gives no name: the conversation's number stands in for one.
    assert (await waiting.first.locator(".name").text_content() or "").startswith("Customer #")
    assert await agent.title() == "(1) Inbox · botkit"
    await waiting.first.get_by_role("button").click()
    await agent.wait_for_function(
        "() => document.querySelectorAll('#messages .message').length >= 6"
    )
    transcript = await _transcript(agent)
    assert [kind for kind, _, _ in transcript] == ["customer", "bot"] * 3
    assert transcript[2][2] == HOSTILE and transcript[3][2] == "echo: " + HOSTILE
    assert await agent.evaluate("window.__pwned") is None
    assert await agent.locator("#messages img, #messages script, #messages a").count() == 0

    # The answer reaches the customer in the widget, under Ana's name.
    box = agent.get_by_label("Your answer")
    await box.fill("Hi, Ana here.\nLet me check order 4711.")
    await box.press("Enter")
    await customer.wait_for_function(
        f"() => {WIDGET}.querySelectorAll('.botkit-log [data-seq]').length >= 7", timeout=10_000
    )
    assert await customer.locator(".botkit-log .botkit-agent").last.text_content() == "Ana"
    await agent.wait_for_function(
        "() => document.querySelectorAll('#messages .message').length >= 7"
    )
    assert (await _transcript(agent))[-1] == (
        "agent",
        "Ana",
        "Hi, Ana here.\nLet me check order 4711.",
    )
    assert await box.input_value() == ""  # cleared once stored, not before
    await agent.locator("#handled li").first.wait_for()  # the queue moved it
    assert await agent.locator("#waiting li").count() == 0
    assert await agent.locator("#waiting-empty").is_visible()

    # What the customer writes next appears by itself.
    await _customer_says(customer, "Thanks! It was a blue parcel.", 8)
    await agent.get_by_text("Thanks! It was a blue parcel.").wait_for(timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await agent.screenshot(path=str(SHOTS / "inbox-desktop.png"))

    # A reload keeps the agent signed in (this tab) and the conversation open, once.
    await agent.reload()
    await agent.wait_for_function(
        "() => document.querySelectorAll('#messages .message').length >= 8"
    )
    await asyncio.sleep(2.5)  # a poll or two later: still nothing twice
    assert len(await _transcript(agent)) == 8

    # Back to the bot: the page says so, and the customer gets answers again.
    await agent.get_by_role("button", name="Give back to the bot").click()
    await agent.get_by_text("The bot is answering this conversation").wait_for()
    assert await agent.get_by_role("button", name="Take over and send").is_visible()
    await agent.locator("#handled-empty").wait_for(state="visible", timeout=10_000)
    await _customer_says(customer, "are you there?", 10)
    assert await customer.locator(".botkit-log .botkit-msg").last.text_content() is not None

    await agent.get_by_role("button", name="Sign out").click()
    await agent.get_by_label("Your agent token").wait_for()
    assert await agent.evaluate("sessionStorage.length") == 0
    assert not customer.problems, customer.problems
    # CSP violations are console errors too; the one failed load is the wrong token.
    assert [p for p in agent.problems if "401 (Unauthorized)" not in p] == [], agent.problems
    assert len(agent.problems) == 1
    await customer.context.close()
    await agent.context.close()


async def test_the_team_token_asks_for_the_agents_name(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    agent = await _page(browser)
    await agent.set_viewport_size({"width": 390, "height": 800})
    await agent.goto(servers.inbox)
    await _sign_in(agent, TEAM)
    await agent.get_by_text("This is the team's shared token: add your name.").wait_for()
    await agent.get_by_label("Your name, as customers will see it").fill("  Zed   Moore ")
    await agent.get_by_role("button", name="Sign in").click()
    await agent.get_by_text("Signed in as Zed Moore").wait_for()
    SHOTS.mkdir(parents=True, exist_ok=True)
    await agent.screenshot(path=str(SHOTS / "inbox-phone.png"))
    assert not agent.problems, agent.problems
    await agent.context.close()


async def _waiting_customer(bot: Bot, name: str) -> None:
    key = "s:" + name.lower()
    contact = Contact("web", "v-" + name.lower(), name)
    await bot.submit(InboundMessage("web", key, contact, f"I am {name}.", f"{key}-1"))
    await bot.submit(InboundMessage("web", key, contact, "/human", f"{key}-2"))
    assert await bot.drain(10)


async def _open(agent: Any, name: str) -> None:
    await (
        agent.locator("#waiting li, #handled li")
        .filter(has_text=name)
        .get_by_role("button")
        .click()
    )
    await agent.locator("#title").filter(has_text=name).wait_for()


async def _agent_texts(bot: Bot, name: str) -> list[str]:
    stored = await bot.store.messages_after("web", "s:" + name.lower(), 0, 100)
    return [m.working_text or m.text for m in stored if m.agent is not None]


async def test_an_answer_goes_once_and_only_to_its_customer(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    bot = servers.bot
    await _waiting_customer(bot, "Alice")
    await _waiting_customer(bot, "Bob")
    agent = await _page(browser)
    posts: list[str] = []
    slow: dict[str, Any] = {"mode": "slow"}
    # Each answer is held until the test lets it go (not for a time, which a loaded
    # machine could let pass before the steps meant to happen meanwhile).
    go_on = asyncio.Event()

    async def answers(route: Any) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        posts.append(route.request.url)
        await go_on.wait()
        go_on.clear()
        if slow["mode"] == "fail":
            await route.abort()  # the network, as the agent's laptop loses it
            return
        await route.continue_()

    await agent.route("**/v1/conversations/*/messages", answers)
    await agent.goto(servers.inbox)
    await _sign_in(agent, ANA)
    await _open(agent, "Alice")
    box = agent.get_by_label("Your answer")

    # Enter, and Enter again while it is on its way (after a poll came back): once.
    await box.fill("Alice, your refund is approved.")
    await box.press("Enter")
    await asyncio.sleep(2.5)
    await box.press("Enter")
    assert await agent.locator("#send").is_disabled()
    await box.press("End")
    await box.type(" Also a voucher.")  # typed while it is on its way: kept, not resent
    # The agent moves on to Bob meanwhile: Alice's answer does not follow.
    await _open(agent, "Bob")
    assert await box.input_value() == ""
    await box.fill("Bob, a draft.")
    go_on.set()  # Alice's answer arrives
    await agent.wait_for_function("() => !document.querySelector('#send').disabled")
    assert len(posts) == 1 and await _agent_texts(bot, "Alice") == [
        "Alice, your refund is approved."
    ]
    await _open(agent, "Alice")
    assert await box.input_value() == "Also a voucher."  # the sent part is gone
    await _open(agent, "Bob")
    assert await box.input_value() == "Bob, a draft."  # each draft stays with its customer

    # An answer that fails after the agent left its conversation is reported, and kept.
    slow["mode"] = "fail"
    await box.press("Enter")
    await _open(agent, "Alice")  # moved on to another conversation
    go_on.set()  # Bob's answer fails now
    await agent.get_by_text("Not sent: your answer to Bob.").wait_for()
    await _open(agent, "Bob")
    assert await box.input_value() == "Bob, a draft."
    assert "Not sent" in (await agent.locator("#send-error").text_content() or "")
    assert await agent.locator("#alert").text_content() == ""  # nobody else is waiting
    assert await _agent_texts(bot, "Bob") == []

    # A refused "give back" stays on screen, whatever the page reads meanwhile.
    async def refuse(route: Any) -> None:
        await route.fulfill(status=503, json={"error": "the store is busy"})

    await agent.route("**/v1/conversations/*/release", refuse)
    await agent.get_by_role("button", name="Give back to the bot").click()
    await agent.get_by_text("Not given back: the store is busy").wait_for()
    await asyncio.sleep(2.5)  # a poll of the conversation and of the queue later
    assert await agent.get_by_text("Not given back: the store is busy").is_visible()

    # Signing out leaves nothing of this agent's work on the tab.
    await agent.get_by_role("button", name="Sign out").click()
    assert await agent.evaluate("location.hash") == ""
    await _sign_in(agent, ANA)
    await agent.get_by_text("Signed in as Ana").wait_for()
    assert await box.input_value() == "" and await agent.locator("#open").is_hidden()
    await agent.context.close()


# A 1x1 PNG: a real image the browser decodes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class PhotoChannel(Connector[ConnectorConfig]):
    """A channel whose customers send photos (as Telegram's do): it fetches them by
    ``ref`` (``botkit.channel.FileSource``), and keeps what is sent to its customers."""

    name: ClassVar[str] = "photos"

    def __init__(self, core: Any) -> None:
        super().__init__(ConnectorConfig(), core)
        self.sent: list[OutboundReply] = []

    async def connect(self) -> None:
        pass

    async def listen(self) -> None:
        pass

    async def send(self, reply: OutboundReply) -> None:
        self.sent.append(reply)

    async def disconnect(self) -> None:
        pass

    async def fetch_file(self, ref: str, *, max_bytes: int) -> bytes:
        files = {"png-1": PNG, "pdf-1": b"%PDF-1.7 not a picture"}
        if ref not in files:
            raise ConnectorError("no such file")
        return files[ref]


async def test_an_agent_looks_at_the_photo_a_customer_sent(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    bot = servers.bot
    bot.attach_connector(PhotoChannel(bot))
    contact = Contact("photos", "cam", "Cam")
    photo = Attachment("image", "dent.png", "image/png", len(PNG), ref="png-1")
    # Its type says picture (as the customer's app said); it is not one.
    posing = Attachment("file", "scan.jpg", "image/jpeg", 22, ref="pdf-1")
    await bot.submit(InboundMessage("photos", "cam", contact, "/human", "cam-1"))
    assert await bot.drain(10)
    await bot.submit(
        InboundMessage("photos", "cam", contact, "", "cam-2", attachments=(photo, posing))
    )
    assert await bot.drain(10)

    agent = await _signed_in_page(browser, servers)
    await agent.locator("#waiting li").filter(has_text="Cam").get_by_role("button").click()
    await agent.get_by_role("button", name="Show").first.click()
    picture = agent.get_by_role("img", name="dent.png")
    await picture.wait_for()
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == 1
    assert (await picture.get_attribute("src") or "").startswith("blob:")
    # The one that is not a picture is said so, and offered as the file it is.
    await agent.get_by_role("button", name="Show").click()
    await agent.get_by_text("This file is not a picture the page can show.").wait_for()
    await agent.get_by_role("link", name="Save scan.jpg").wait_for()
    assert await agent.get_by_role("img", name="scan.jpg").count() == 0
    assert not agent.problems, agent.problems  # the CSP lets the shown photo in
    await agent.context.close()


# Headless Chromium shows no notifications: the page's Notification is a recorder, and
# the tab is "hidden" when the test says so.
NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) {
    this.title = title;
    this.options = options;
    window.__notes.push(this);
  }
  close() {}
  static get permission() { return window.__permission || "default"; }
  static requestPermission() { window.__permission = "granted"; return Promise.resolve("granted"); }
};
Object.defineProperty(Document.prototype, "hidden", {
  configurable: true, get() { return Boolean(window.__hidden); },
});
"""


async def test_a_customer_who_starts_waiting_is_announced_in_the_background(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    bot = servers.bot
    agent = await _page(browser)
    await agent.add_init_script(NOTIFICATIONS)
    await agent.goto(servers.inbox)
    await _sign_in(agent, ANA)
    await agent.get_by_role("button", name="Notify me").click()
    await agent.get_by_role("button", name="Notifying").wait_for()

    await _waiting_customer(bot, "Eve")  # the tab is in front: the list is enough
    await agent.locator("#waiting li").filter(has_text="Eve").wait_for()
    await agent.evaluate("window.__hidden = true")
    await _waiting_customer(bot, "Dana")
    await agent.wait_for_function("() => window.__notes.length > 0", timeout=10_000)
    await asyncio.sleep(3.5)  # another look at the queue: nothing announced twice
    notes = await agent.evaluate("window.__notes.map(n => [n.title, n.options.body])")
    assert notes == [["Dana is waiting for an agent", "I am Dana."]]
    # Clicking it opens that conversation.
    await agent.evaluate("window.__notes[0].onclick()")
    await agent.locator("#title").filter(has_text="Dana").wait_for()
    # Once an agent has her, what she writes next is announced too.
    box = agent.get_by_label("Your answer")
    await box.fill("Hello Dana, Ana here.")
    await box.press("Enter")
    await agent.locator("#handled li").filter(has_text="Dana").wait_for()
    await asyncio.sleep(3.5)  # a look at the queue that knows her as handled
    dana = Contact("web", "v-dana", "Dana")
    await bot.submit(InboundMessage("web", "s:dana", dana, "Are you there?", "s:dana-3"))
    await agent.wait_for_function("() => window.__notes.length > 1", timeout=10_000)
    latest = await agent.evaluate("[window.__notes[1].title, window.__notes[1].options.body]")
    assert latest == ["Dana wrote", "Are you there?"]
    assert not agent.problems, agent.problems
    await agent.context.close()


async def test_what_changes_under_an_open_conversation_is_shown(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    bot = servers.bot
    await _waiting_customer(bot, "Finn")
    agent = await _signed_in_page(browser, servers)
    await _open(agent, "Finn")
    box = agent.get_by_label("Your answer")

    # Safari's Enter that confirms an input method's word (keyCode 229) does not send.
    await box.fill("にほんご")
    await box.evaluate(
        """box => box.dispatchEvent(new KeyboardEvent("keydown",
             {key: "Enter", keyCode: 229, bubbles: true, cancelable: true}))"""
    )
    await asyncio.sleep(0.5)
    assert await _agent_texts(bot, "Finn") == [] and await box.input_value() == "にほんご"

    # An answer shown as sent whose delivery fails later is marked when it does.
    await box.fill("Finn, your parcel is on its way.")
    await box.press("Enter")
    answer = agent.locator("#messages .message.agent").last
    await answer.wait_for()
    (stored,) = [
        m for m in await bot.store.messages_after("web", "s:finn", 0, 100) if m.agent is not None
    ]
    await bot.store.set_message_status(stored.id, "failed", "the channel refused it")
    await answer.get_by_text("Not delivered").wait_for(timeout=10_000)

    # Erased meanwhile (the customer asked for it): the page says so, and keeps saying it.
    await bot.store.forget_contact("web", "v-finn")
    notice = agent.get_by_text("This conversation no longer exists")
    await notice.wait_for(timeout=10_000)
    await asyncio.sleep(3.5)  # the queue has been read again meanwhile
    assert await notice.is_visible() and await box.is_disabled()
    # The one failed load the console reports is that 404.
    assert [p for p in agent.problems if "404 (Not Found)" not in p] == [], agent.problems
    await agent.context.close()


async def test_a_long_queue_shows_more_on_request(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    bot = servers.bot
    already = len(await bot.store.conversations_with_status(["waiting_human"], limit=100))
    for number in range(105 - already):
        key = f"s:queue-{number}"
        contact = Contact("web", f"v-queue-{number}", f"Queued {number}")
        await bot.submit(InboundMessage("web", key, contact, "/human", key + "-1"))
    assert await bot.drain(30)
    agent = await _signed_in_page(browser, servers)
    waiting = agent.locator("#waiting li")
    await waiting.nth(99).wait_for()
    assert await waiting.count() == 100
    assert await agent.locator("#waiting-count").text_content() == "100+"
    assert await agent.title() == "(100+) Inbox · botkit"
    more = agent.locator("#waiting-more")
    await more.focus()
    await agent.keyboard.press("Enter")
    await waiting.nth(104).wait_for()
    assert await agent.locator("#waiting-count").text_content() == "105"
    assert await more.is_hidden()
    # Focus goes to the first conversation it added, not to the top of the page.
    focused = await agent.evaluate("document.activeElement.closest('li')?.dataset.id")
    assert focused == await waiting.nth(100).get_attribute("data-id")
    assert not agent.problems, agent.problems
    await agent.context.close()


async def test_a_web_customer_sends_the_agent_a_screenshot(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    """The widget's paperclip: refused while only the bot answers (it cannot read
    files), taken once a person has the conversation, shown to the customer as sent and
    to the agent as the picture it is."""
    customer = await _page(browser)
    await customer.goto(servers.widget)
    await _customer_says(customer, "My screen shows error E42.", 2)
    attach = customer.get_by_role("button", name="Send a picture or a PDF to the support agent")
    await attach.wait_for()
    chooser = ".botkit-form input[type=file]"
    shot = {"name": "error.png", "mimeType": "image/png", "buffer": PNG}
    await customer.set_input_files(chooser, files=[shot])
    await customer.get_by_text("Files go to a person: ask for one in the chat first.").wait_for()
    assert await customer.locator(".botkit-file").count() == 0
    await _customer_says(customer, "/human", 4)

    agent = await _signed_in_page(browser, servers)
    row = agent.locator("#waiting li").filter(has_text="error E42")
    for _ in range(150):  # the newest waits last: past "Show more" after the long-queue test
        if await row.count():
            break
        if await agent.locator("#waiting-more").is_visible():
            await agent.locator("#waiting-more").click()
        await asyncio.sleep(0.2)
    await row.get_by_role("button").click()
    box = agent.get_by_label("Your answer")
    await box.fill("Could you send me a screenshot?")
    await box.press("Enter")
    await customer.wait_for_function(
        f"() => {WIDGET}.querySelectorAll('.botkit-log [data-seq]').length >= 5", timeout=10_000
    )

    await customer.set_input_files(chooser, files=[shot])
    chip = customer.locator(".botkit-log .botkit-in .botkit-file")
    await chip.wait_for(timeout=10_000)
    # (The paperclip is an SVG; "File: " is said to screen readers only.)
    assert await chip.text_content() == f"File: error.png ({len(PNG)} B)"
    # A PDF goes too; a page posing as a picture does not.
    await customer.set_input_files(
        chooser, files=[{"name": "fake.png", "mimeType": "image/png", "buffer": b"<html>hi</html>"}]
    )
    await customer.get_by_text(
        "Only pictures (JPEG, PNG, GIF, WebP) and PDFs can be sent."
    ).wait_for()
    assert await chip.count() == 1

    # A reload shows the file again, from the widget's own copy of the conversation.
    await customer.reload()
    await chip.wait_for()  # the panel was open: it opens again

    # exact: the queue's button for this customer says "...shows error E42".
    await agent.get_by_role("button", name="Show", exact=True).click()
    picture = agent.get_by_role("img", name="error.png")
    await picture.wait_for(timeout=10_000)
    assert await picture.evaluate("img => img.complete && img.naturalWidth") == 1
    assert not agent.problems, agent.problems
    # The refused uploads are answered with errors the page explains (409, 415).
    assert all(" 409 " in p or " 415 " in p for p in customer.problems), customer.problems
    await customer.context.close()
    await agent.context.close()


async def _file_sent(pg: Any) -> None:
    """Wait until the widget is done sending a file (its paperclip works again)."""
    attach = pg.get_by_role("button", name="Send a picture or a PDF to the support agent")
    for _ in range(400):  # retries may wait for the address's file rate (10 s a file)
        if await attach.is_enabled():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the widget is still sending the file")


async def test_a_file_whose_answer_is_lost_is_sent_again_and_kept_once(
    servers: Servers,
    browser: Any,  # noqa: F811
) -> None:
    """The widget sends a file again when its answer does not come (the connection
    dropped after the server kept it) or says to retry (busy): under the same client id,
    so the server answers the retry as the file it kept, and the file is there once."""
    customer = await _page(browser)
    await customer.goto(servers.widget)
    await _customer_says(customer, "/human", 2)
    posts: list[str] = []

    async def answer_lost(route: Any) -> None:
        posts.append(route.request.url)
        if len(posts) == 1:
            await route.fetch()  # the server keeps the file...
            await route.abort("connectionreset")  # ...and its answer never arrives
        else:
            await route.continue_()

    await customer.route("**/api/files?*", answer_lost)
    chooser = ".botkit-form input[type=file]"
    await customer.set_input_files(
        chooser, files=[{"name": "lost.png", "mimeType": "image/png", "buffer": PNG}]
    )
    chip = customer.locator(".botkit-log .botkit-in .botkit-file")
    await chip.wait_for(timeout=15_000)  # (the socket shows it as soon as it is kept)
    await _file_sent(customer)

    async def busy_once(route: Any) -> None:
        posts.append(route.request.url)
        if sum("busy.png" in u for u in posts) == 1:
            await route.fulfill(
                status=503, headers={"Retry-After": "1"}, content_type="application/json",
                body='{"error": "busy", "message": "the chat is receiving many files"}',
            )  # fmt: skip
        else:
            await route.continue_()

    await customer.unroute("**/api/files?*")
    await customer.route("**/api/files?*", busy_once)
    await customer.set_input_files(
        chooser, files=[{"name": "busy.png", "mimeType": "image/png", "buffer": PNG}]
    )
    await _file_sent(customer)
    # Each file went more than once (more still if the address's file rate said to
    # wait: earlier tests here sent files too), always under its first client id.
    ids: dict[str, set[str]] = {}
    for url in posts:
        query = parse_qs(urlsplit(url).query)
        ids.setdefault(query["name"][0], set()).update(query["client_id"])
    assert [len(v) for v in ids.values()] == [1, 1], posts
    assert sum("lost.png" in u for u in posts) >= 2 and sum("busy.png" in u for u in posts) >= 2
    assert await chip.count() == 2
    # A reload shows what the server stored: each file once.
    await customer.reload()
    await chip.first.wait_for()
    names = await chip.all_text_contents()
    assert names == [f"File: lost.png ({len(PNG)} B)", f"File: busy.png ({len(PNG)} B)"]
    await customer.context.close()
