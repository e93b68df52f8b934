"""Widget regressions from the web review, in the real headless Chromium of
test_web_browser.py against the real bot (echo backend, temporary SQLite).

Each test starts its own bot, because most of them need a setting of their own (short
idle timeout, slow streaming, the widget behind a path prefix) or break the server on
purpose. The "shop" is a page on another origin that embeds the widget with one script
tag; signed-in customers get ``data-user-token`` (an HS256 JWT).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, WSCloseCode, web
from test_web_browser import (  # noqa: F401
    FOCUSED,
    WIDGET,
    _open_and_send,
    _shown,
    _wait_reply,
    browser,
)
from web_helpers import JWT_SECRET, SITE_KEY, shop_site, web_settings

from botkit.bot import Bot
from botkit.events import Button
from botkit.pipeline import Context
from botkit.pipeline.handlers import Handler, StopPropagation
from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

HOSTILE_LABEL = '<img src=x onerror="window.__pwned=1">Yes'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(sub: str, ttl_s: float = 600) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"sub": sub, "exp": int(time.time() + ttl_s)}).encode())
    sig = hmac.new(JWT_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


@dataclass
class Env:
    bot: Bot
    connector: WebConnector
    shop: str  # the shop's origin; GET /?user=<sub> renders a signed-in page
    jwt_ttl_s: list[float]  # lifetime of the JWTs the shop prints (tests change it)

    async def drop_sockets(self, code: int = WSCloseCode.SERVICE_RESTART) -> None:
        """Close every widget socket from the server side."""
        await asyncio.gather(*(ws.close(code=code) for ws in list(self.connector.service.sockets)))


@asynccontextmanager
async def _started(
    tmp_path: Path,
    *,
    word_delay: float = 0.0,
    prefix: bool = False,
    plugins: dict[str, Any] | None = None,
    **web_cfg: Any,
) -> AsyncIterator[Env]:
    """A bot serving the widget, and a shop page on another origin embedding it.

    ``prefix``: the shop mounts the connector's app under ``/chat/`` (a path-prefixed
    reverse proxy) and loads ``/chat/widget.js`` without ``data-server``.
    """
    settings = web_settings(tmp_path / "bot.db", {"port": 0, **web_cfg}, word_delay=word_delay,
                            plugins=plugins)  # fmt: skip
    async with Bot(settings) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()
        ttl = [600.0]
        src = "/chat/widget.js" if prefix else f"{connector.url}/widget.js"

        async def page(request: web.Request) -> web.Response:
            user = request.query.get("user")
            extra = f' data-user-token="{_jwt(user, ttl[0])}"' if user else ""
            lang = request.query.get("lang", "en")  # "?lang=": a page that declares none
            html = f"<html lang='{lang}'>" if lang else "<html>"
            return web.Response(
                content_type="text/html",
                text=(
                    f"<!doctype html>{html}<head><title>Shop</title>"
                    "<link rel='icon' href='data:,'></head><body><h1>Shop</h1>"
                    f'<script src="{src}" async data-site-key="{SITE_KEY}"'
                    f' data-title="Shop help"{extra}></script></body></html>'
                ),
            )

        async with shop_site(connector, page, widget_under="/chat/" if prefix else None) as origin:
            yield Env(bot, connector, origin, ttl)


@asynccontextmanager
async def _page(browser: Any) -> AsyncIterator[Any]:  # noqa: F811
    context = await browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        pg = await context.new_page()
        pg.problems = []
        pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))
        yield pg
    finally:
        await context.close()


def _watch(pg: Any) -> tuple[list[Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Record the page's sockets, and the frames it sent and received (parsed)."""
    sockets: list[Any] = []
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def on_ws(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda p: sent.append(json.loads(p)))
        ws.on("framereceived", lambda p: received.append(json.loads(p)))

    pg.on("websocket", on_ws)
    return sockets, sent, received


async def _texts(pg: Any) -> list[str]:
    return [text for _, text in await _shown(pg)]


async def _storage(pg: Any) -> dict[str, Any]:
    raw: dict[str, str] = await pg.evaluate(
        "Object.fromEntries(Object.keys(localStorage).filter(k => k.startsWith('botkit:'))"
        ".map(k => [k, localStorage.getItem(k)]))"
    )
    return {k: json.loads(v) for k, v in raw.items()}


async def _status(pg: Any) -> str:
    return str(await pg.locator(".botkit-status").text_content())


async def _until(check: Callable[[], Any], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# -- #1 / #4: the storage slot belongs to one identity ------------------------------------


async def test_signed_out_visitor_gets_a_fresh_anonymous_chat(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Customer A chats signed in, then signs out on a shared computer: the next visitor
    sees nothing of A's, presents no token of A's, and is a new anonymous visitor."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        _, sent, received = _watch(pg)
        await pg.goto(env.shop + "/?user=customer-A")
        await _open_and_send(pg, "my card ends in 4242")
        await _wait_reply(pg, 2)
        a_hellos = len([f for f in sent if f["type"] == "hello"])

        await pg.goto(env.shop + "/")  # signed out: the plain snippet
        await pg.wait_for_selector(".botkit-launcher")
        assert await _texts(pg) == []
        assert not [k for k in await _storage(pg) if ":u:" in k]  # A's session left too
        await _open_and_send(pg, "hello, anyone?")
        await _wait_reply(pg, 2)
        assert await _texts(pg) == ["hello, anyone?", "echo: hello, anyone?"]
        hellos = [f for f in sent if f["type"] == "hello"][a_hellos:]
        assert hellos and not [h for h in hellos if "user_token" in h or "token" in h], hellos
        welcome = [f for f in received if f["type"] == "welcome"][-1]
        assert welcome["identity"] == "session" and welcome["token"].startswith("v1.s.")

        # A signs in again: their conversation comes back from the server.
        await pg.goto(env.shop + "/?user=customer-A")
        await pg.get_by_role("button", name="Open chat").click()
        await _wait_reply(pg, 2)
        assert await _texts(pg) == ["my card ends in 4242", "echo: my card ends in 4242"]
        assert not pg.problems, pg.problems


async def test_next_signed_in_user_sees_only_their_own_chat(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Customers A then B on one browser (both data-user-token): B never gets A's cache,
    A's lastSeq or A's session token, and B's own replies are shown."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        _, sent, _ = _watch(pg)
        await pg.goto(env.shop + "/?user=customer-A")
        for n, text in enumerate(("A one", "A two"), start=1):
            await _open_and_send(pg, text)
            await _wait_reply(pg, 2 * n)
        a_frames = len(sent)
        await pg.goto(env.shop + "/?user=customer-B")
        await _open_and_send(pg, "B hello")
        await _wait_reply(pg, 2)
        assert await _shown(pg) == [("1", "B hello"), ("2", "echo: B hello")]
        a_subject = _b64(b"customer-A")
        b_hellos = [f for f in sent[a_frames:] if f["type"] == "hello"]
        assert b_hellos and all(h["after_seq"] == 0 for h in b_hellos), b_hellos
        assert not [h for h in b_hellos if a_subject in h.get("token", "")], b_hellos
        assert not pg.problems, pg.problems


async def test_cache_of_another_conversation_is_dropped_on_welcome(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The server's conversation is shorter than the widget's cache (a restored database):
    the cached messages go, and the conversation is fetched from its start."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "one")
        await _wait_reply(pg, 2)
        # Pretend the browser had seen seq 1..7 of a conversation the server no longer has.
        await pg.evaluate(
            """() => { const k = Object.keys(localStorage).find(k => k.startsWith('botkit:'));
              const s = JSON.parse(localStorage.getItem(k));
              s.cache = [1, 2, 3, 4, 5, 6, 7].map(n => ({seq: n, direction: n % 2 ? 'in' : 'out',
                                                         text: 'lost ' + n}));
              s.lastSeq = 7; localStorage.setItem(k, JSON.stringify(s)); }"""
        )
        await pg.reload()
        await pg.wait_for_selector(".botkit-log [data-seq='2']")
        await asyncio.sleep(0.5)  # nothing else may come
        assert await _shown(pg) == [("1", "one"), ("2", "echo: one")]
        await _open_and_send(pg, "two")
        await _wait_reply(pg, 4)
        assert [seq for seq, _ in await _shown(pg)] == ["1", "2", "3", "4"]
        assert not pg.problems, pg.problems


# -- #3: signed-in users across reconnects ------------------------------------------------


async def test_signed_in_chat_survives_reconnects_after_the_jwt_expires(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The server takes a signed-in user's session only next to the page's identity, and
    ends it with the JWT: it closes the socket at the JWT's exp. The widget then says so
    and keeps what the visitor types; when the site puts a fresh JWT in data-user-token,
    it reconnects as the same user and delivers it."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        env.jwt_ttl_s[0] = 2
        await pg.goto(env.shop + "/?user=customer-C")
        await _open_and_send(pg, "hello")
        await _wait_reply(pg, 2)
        # No socket dropped here: the server ends the session itself at the JWT's exp.
        # (Not "Chat is not available": the visitor learns what to do.)
        await pg.wait_for_selector(".botkit-status:has-text('Your sign-in has expired')")
        await _open_and_send(pg, "still there?")
        assert await pg.locator(".botkit-pending").count() == 1  # kept, not failed
        fresh = _jwt("customer-C")
        await pg.eval_on_selector(
            "script[data-site-key]", "(s, t) => s.setAttribute('data-user-token', t)", fresh
        )
        await _wait_reply(pg, 4)
        assert await _shown(pg) == [
            ("1", "hello"),
            ("2", "echo: hello"),
            ("3", "still there?"),
            ("4", "echo: still there?"),
        ]
        # Later reconnects keep working with the refreshed token.
        await env.drop_sockets()
        await _open_and_send(pg, "and again")
        await _wait_reply(pg, 6)
        assert await _status(pg) == ""
        assert not pg.problems, pg.problems


# -- #5: oversized messages and the reconnect backoff -------------------------------------


async def test_message_whose_json_is_over_the_limit_is_refused_before_sending(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """9,000 quotes are 9,000 bytes of text but 18,000+ bytes of JSON (limit 16,384): the
    visitor is told at once, nothing is queued, no socket is burned."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        sockets, _, _ = _watch(pg)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "short one")
        await _wait_reply(pg, 2)
        text = '"' * 9000
        await _open_and_send(pg, text)

        async def told() -> bool:
            return "too long" in await _status(pg)

        await _until(told)
        assert await pg.locator(".botkit-pending, .botkit-failed").count() == 0
        assert await pg.get_by_label("Your message").input_value() == text  # not lost
        assert len(sockets) == 1
        assert not [m for s in (await _storage(pg)).values() for m in s["outbox"]]
        # Under the limit by JSON size: sent.
        await pg.get_by_label("Your message").fill('"' * 8000)
        await pg.get_by_label("Your message").press("Enter")
        await _wait_reply(pg, 4)
        assert await _status(pg) == ""


async def test_a_1009_close_fails_the_message_instead_of_resending_it(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A welcome that overstates the limit (a proxy in between, a changed config): the
    server closes with 1009; the widget marks that message failed, drops it from the
    outbox and does not loop; the next message goes through."""
    async with _started(tmp_path) as env, _page(browser) as pg:

        async def lie_about_the_limit(route: Any) -> None:
            server = route.connect_to_server()

            def from_server(message: str | bytes) -> None:
                frame = json.loads(message)
                if frame.get("type") == "welcome":
                    frame["max_message_bytes"] = 1_000_000
                route.send(json.dumps(frame))

            server.on_message(from_server)

        await pg.route_web_socket("**/ws", lie_about_the_limit)
        sockets, _, _ = _watch(pg)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "x" * 20_000)
        await pg.wait_for_selector(".botkit-failed")
        await asyncio.sleep(3.0)  # a loop would open a socket every ~0.5 s
        assert len(sockets) <= 3, len(sockets)
        assert await pg.locator(".botkit-pending").count() == 0
        assert "Too long" in str(await pg.locator(".botkit-failed .botkit-note").text_content())
        assert not [m for s in (await _storage(pg)).values() for m in s["outbox"]]
        await _open_and_send(pg, "a normal one")
        await _wait_reply(pg, 2)
        assert await _texts(pg) == ["x" * 20_000, "a normal one", "echo: a normal one"]


async def test_backoff_grows_when_every_socket_dies_after_its_welcome(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A socket closed right after its welcome does not reset the backoff: a broken
    server (or a proxy that cuts sockets) does not get ~2 connects a second for ever."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        sockets, _, _ = _watch(pg)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "hello")
        await _wait_reply(pg, 2)
        seen: dict[Any, float] = {}

        async def cut() -> None:
            while True:
                now = time.monotonic()
                for ws in list(env.connector.service.sockets):
                    # Long enough for the welcome to be out, short against the backoff.
                    if now - seen.setdefault(ws, now) >= 0.4:
                        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
                await asyncio.sleep(0.05)

        before = len(sockets)
        cutter = asyncio.create_task(cut())
        try:
            await asyncio.sleep(6.0)
        finally:
            cutter.cancel()
            with suppress(asyncio.CancelledError):
                await cutter
        # Backoff 0.25-0.5, 0.5-1, 1-2, 2-4 s (+0.4 s up each): at most 5 in 6 s. Reset
        # on every welcome it would be one per <= 0.9 s.
        # (The status at this moment depends on where the last socket is in its 0.4 s.)
        assert len(sockets) - before <= 5, len(sockets) - before


# -- #6: a socket that drops while a reply streams ----------------------------------------


async def test_reply_finished_while_offline_is_shown_once(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with _started(tmp_path, word_delay=0.08) as env, _page(browser) as pg:
        await pg.goto(env.shop + "/")
        text = " ".join(f"word{i}" for i in range(25))  # ~2 s of streaming
        await _open_and_send(pg, text)
        await pg.wait_for_function(
            f"() => (({WIDGET}?.querySelector('.botkit-streaming .botkit-text') || {{}})"
            ".textContent || '').length > 20"
        )
        svc = env.connector.service
        real_take = svc.ip_connects.take
        svc.ip_connects.take = lambda *a, **k: 1.0  # type: ignore[method-assign]
        try:
            await env.drop_sockets(WSCloseCode.GOING_AWAY)
            await pg.wait_for_function(f"!{WIDGET}.querySelector('.botkit-streaming')")
            assert await pg.locator(".botkit-typing").is_hidden()
            await asyncio.sleep(2.5)  # the reply finishes and is stored meanwhile
        finally:
            svc.ip_connects.take = real_take  # type: ignore[method-assign]
        await pg.wait_for_selector(".botkit-log [data-seq='2']", timeout=30_000)
        await asyncio.sleep(0.3)
        assert await _shown(pg) == [("1", text), ("2", f"echo: {text}")]
        assert await pg.locator(".botkit-streaming").count() == 0
        assert await pg.locator(".botkit-typing").is_hidden()


# -- #7: idle close -----------------------------------------------------------------------


async def test_idle_close_with_the_panel_open_reconnects(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """After an idle close (4408) the open panel reconnects and shows what arrives later
    (here via the HTTP API); with the panel closed it says it is disconnected and comes
    back when the panel opens."""
    async with _started(tmp_path, idle_timeout_s=2) as env, _page(browser) as pg:
        sockets, _, _ = _watch(pg)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "I'll wait for an answer")
        await _wait_reply(pg, 2)
        token = next(iter((await _storage(pg)).values()))["token"]

        async def reconnected() -> bool:
            return len(sockets) >= 2

        await _until(reconnected)  # the first socket was closed as idle; the panel is open
        async with ClientSession() as http:
            resp = await http.post(
                env.connector.url + "/api/messages",
                json={"client_id": "later", "text": "follow-up"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status == 201
        await _wait_reply(pg, 4)
        assert await _texts(pg) == [
            "I'll wait for an answer",
            "echo: I'll wait for an answer",
            "follow-up",
            "echo: follow-up",
        ]
        assert len(sockets) >= 2

        await pg.get_by_role("button", name="Close chat", exact=True).click()

        async def idle() -> bool:
            return "idle" in await _status(pg)

        await _until(idle)  # idle again, with nobody looking: never a blank status offline
        count = len(sockets)
        await pg.get_by_role("button", name="Open chat").click()
        await _until(
            lambda: pg.evaluate(f"{WIDGET}.querySelector('.botkit-status').textContent === ''")
        )
        assert len(sockets) == count + 1
        assert not pg.problems, pg.problems


# -- #11: quick replies and failed messages -----------------------------------------------


class _Menu(Handler):
    """Answers "menu" with quick replies (one with a label that looks like markup)."""

    def check(self, ctx: Context) -> bool:
        return ctx.text == "menu"

    async def handle(self, ctx: Context) -> None:
        ctx.set_reply(
            "Pick one", buttons=(Button(HOSTILE_LABEL, "yes"), Button("Track my order", "order:1"))
        )
        raise StopPropagation


async def test_quick_replies_are_buttons_that_send_their_value(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with _started(tmp_path) as env, _page(browser) as pg:
        env.bot.pipeline.add_handler(_Menu())
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "menu")
        await _wait_reply(pg, 2)
        group = pg.get_by_role("group", name="Quick replies")
        buttons = group.get_by_role("button")
        assert await buttons.all_text_contents() == [HOSTILE_LABEL, "Track my order"]
        for i in range(2):
            box = await buttons.nth(i).bounding_box()
            assert box["height"] >= 44 and box["width"] >= 44
        assert await pg.evaluate("window.__pwned") is None
        assert await pg.locator(".botkit-root img").count() == 0
        # Reload: the newest message keeps its quick replies.
        await pg.reload()
        await pg.wait_for_selector(".botkit-log [data-seq='2']")
        track = pg.get_by_role("button", name="Track my order")
        await track.focus()
        await pg.keyboard.press("Enter")  # keyboard works too
        await _wait_reply(pg, 4)
        assert await _shown(pg) == [
            ("1", "menu"),
            ("2", "Pick one"),
            ("3", "order:1"),
            ("4", "echo: order:1"),
        ]
        assert await pg.locator(".botkit-buttons").count() == 0  # answered: gone
        assert await pg.evaluate(f"{FOCUSED}.id.endsWith('-input')")
        assert not pg.problems, pg.problems


async def test_rating_an_answer_with_the_quick_replies(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The feedback plugin's chips: the visitor's message is the bare label (the widget
    # shows chips under the newest answer only), and the rating is stored.
    async with _started(tmp_path, plugins={"feedback": {}}) as env, _page(browser) as pg:
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "Where is my parcel?")
        await _wait_reply(pg, 2)
        buttons = pg.get_by_role("group", name="Quick replies").get_by_role("button")
        assert await buttons.all_text_contents() == ["👍", "👎"]
        await buttons.nth(1).click()
        await _wait_reply(pg, 4)
        assert await _shown(pg) == [
            ("1", "Where is my parcel?"),
            ("2", "echo: Where is my parcel?"),
            ("3", "👎"),
            ("4", "Sorry that didn't help. Could you tell me more, or ask in other words?"),
        ]
        report = await env.bot.store.feedback_report(datetime(2000, 1, 1, tzinfo=UTC))
        assert report.counts == {"web": {"good": 0, "bad": 1}}
        assert not pg.problems, pg.problems


async def test_message_stored_as_failed_says_so(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A reply frame with status "failed" is marked, in words, not only by colour."""
    async with _started(tmp_path) as env, _page(browser) as pg:

        async def fail_replies(route: Any) -> None:
            server = route.connect_to_server()

            def from_server(message: str | bytes) -> None:
                frame = json.loads(message)
                if frame.get("type") == "message" and frame.get("direction") == "out":
                    frame["status"] = "failed"
                route.send(json.dumps(frame))

            server.on_message(from_server)

        await pg.route_web_socket("**/ws", fail_replies)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "hello")
        await _wait_reply(pg, 2)
        failed = pg.locator(".botkit-log [data-seq='2']")
        assert await failed.get_attribute("class") == "botkit-msg botkit-out botkit-failed"
        assert await failed.locator(".botkit-note").text_content() == "Not delivered"
        assert await pg.locator(".botkit-log [data-seq='1'] .botkit-note").count() == 0


# -- #12: the widget behind a path prefix --------------------------------------------------


async def test_widget_served_under_a_path_prefix(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The shop mounts the chat server at /chat/ and loads /chat/widget.js with no
    data-server: the stylesheet and the socket are found under /chat/ too."""
    async with _started(tmp_path, prefix=True) as env, _page(browser) as pg:
        sockets, _, _ = _watch(pg)
        await pg.goto(env.shop + "/")
        await _open_and_send(pg, "through the proxy")
        await _wait_reply(pg, 2)
        assert [ws.url for ws in sockets] == [env.shop.replace("http:", "ws:") + "/chat/ws"]
        css = await pg.evaluate(f"{WIDGET}.querySelector('link[rel=stylesheet]').href")
        assert css == env.shop + "/chat/widget.css"
        radius = await pg.evaluate(
            f"getComputedStyle({WIDGET}.querySelector('.botkit-launcher')).borderRadius"
        )
        assert radius == "50%"  # the stylesheet really loaded
        assert not pg.problems, pg.problems


# -- #13: tabs share one outbox ------------------------------------------------------------


async def test_tabs_do_not_drop_each_others_unsent_messages(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Tab 1 queues a message while offline; tab 2 saves its own state; tab 1 is closed
    before it reconnects. The message survives in storage and is sent by tab 2."""
    async with _started(tmp_path) as env:
        context = await browser.new_context()
        try:
            tab2 = await context.new_page()
            await tab2.goto(env.shop + "/")
            await tab2.wait_for_selector(".botkit-launcher")
            svc = env.connector.service
            real_take = svc.ip_connects.take
            svc.ip_connects.take = lambda *a, **k: 1.0  # type: ignore[method-assign]
            try:
                tab1 = await context.new_page()
                await tab1.goto(env.shop + "/")
                await _open_and_send(tab1, "sent from tab 1 while offline")
                await tab1.wait_for_selector(".botkit-pending")
                await tab2.get_by_role("button", name="Open chat").click()  # tab 2 saves
                await asyncio.sleep(0.3)
                await tab1.close()
                outbox = [m["text"] for s in (await _storage(tab2)).values() for m in s["outbox"]]
                assert outbox == ["sent from tab 1 while offline"]
            finally:
                svc.ip_connects.take = real_take  # type: ignore[method-assign]
            await tab2.reload()
            await _wait_reply(tab2, 2)
            assert await _texts(tab2) == [
                "sent from tab 1 while offline",
                "echo: sent from tab 1 while offline",
            ]
        finally:
            await context.close()


# -- a page without a language sends no language hint (language review, finding 1) -------


async def test_a_page_that_declares_no_language_sends_no_language_hint(
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The page's language is the bot's hint for a visitor's first answer, and the first
    hint is remembered as the visitor's language: a widget that made up "en" for every
    page without one had every visitor of such a site remembered as English-speaking."""
    async with _started(tmp_path) as env, _page(browser) as pg:
        _, sent, _ = _watch(pg)
        await pg.goto(env.shop + "/?lang=")
        await _open_and_send(pg, "hi")
        await _wait_reply(pg, 2)
        hellos = [f for f in sent if f["type"] == "hello"]
        assert hellos and all(h.get("lang") is None for h in hellos), hellos
        # The widget's own words are in the browser's language (Chromium's en-US): their
        # lang= says so, and it is never sent as a hint.
        assert await pg.locator(".botkit-root").get_attribute("lang") == "en"
        conversation = await env.bot.store.conversation_by_id(1)
        contact = await env.bot.store.get_contact(conversation.contact_id)
        assert contact is not None and contact.language is None

        await pg.goto(env.shop + "/?lang=de")  # a page that declares one still sends it
        box = pg.get_by_label("Ihre Nachricht")  # (the widget speaks German there)
        await box.fill("hallo")
        await box.press("Enter")
        await _wait_reply(pg, 4)
        assert [f for f in sent if f["type"] == "hello"][-1]["lang"] == "de"
        assert await pg.locator(".botkit-root").get_attribute("lang") == "de"
        assert not pg.problems, pg.problems
