"""The widget's own words in the visitor's language, its unread count, and its Escape.

The widget picks its language from ``data-lang``, then ``<html lang>``, then the browser's
languages (Playwright's ``locale``), with English last; a site overrides words with
``data-texts``; Arabic makes it right-to-left. Replies that come while the panel is
closed are counted on the launcher, in its badge and its accessible name, across page
loads. Real headless Chromium (see test_web_browser.py) against the real bot (echo
backend, temporary SQLite); the shop is a page on another origin embedding the widget
with one script tag, built from the query string.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web
from test_web_browser import ARTIFACTS, WIDGET, _wait_reply, browser  # noqa: F401
from test_widget_embedding import Shop
from web_helpers import SITE_KEY, shop_site, web_settings

from botkit.bot import Bot
from connectors.web import WebConnector

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    db = tmp_path_factory.mktemp("web-languages") / "bot.db"
    # Echo replies stream a word every 20 ms: a long message's reply lasts long enough to
    # close the panel before it is stored.
    async with Bot(web_settings(db, {"port": 0}, word_delay=0.02)) as bot:
        connector = bot.connectors["web"]
        assert isinstance(connector, WebConnector)
        await connector.connect()

        async def page(request: web.Request) -> web.Response:
            """``html_lang``/``dir``: the page's ``<html>``; ``lang``, ``texts`` and
            ``title``: the script tag's ``data-lang``, ``data-texts``, ``data-title``;
            ``charset``: the page's encoding."""
            q = request.query
            root = "".join(
                f" {name}='{html.escape(q[key])}'"
                for name, key in (("lang", "html_lang"), ("dir", "dir"))
                if key in q
            )
            data = "".join(
                f' data-{key}="{html.escape(q[key])}"'
                for key in ("lang", "texts", "title")
                if key in q
            )
            return web.Response(
                content_type="text/html",
                charset=q.get("charset", "utf-8"),
                text=(
                    f"<!doctype html><html{root}><head><title>Shop</title>"
                    "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                    "<link rel='icon' href='data:,'></head><body><h1>Shop</h1>"
                    f'<script src="{connector.url}/widget.js" async'
                    f' data-site-key="{SITE_KEY}"{data}></script></body></html>'
                ),
            )

        async with shop_site(connector, page) as origin:
            yield Shop(bot, origin)


@asynccontextmanager
async def _visit(
    browser: Any,  # noqa: F811
    shop: Shop,
    locale: str = "en-US",
    width: int = 1024,
    no_charset: bool = False,
    query: dict[str, str] | None = None,
    **page: str,
) -> AsyncIterator[Any]:
    """A page of the shop in a fresh browser whose languages are ``locale``'s. Its
    ``problems`` collect script errors and console errors, ``warnings`` the console's
    warnings, ``messages`` the message frames its sockets received. ``no_charset``:
    widget.js comes without its ``charset=utf-8`` (a copy on a careless host). The page's
    query string: ``query`` and ``page``."""
    context = await browser.new_context(viewport={"width": width, "height": 700}, locale=locale)
    try:
        pg = await context.new_page()
        pg.problems, pg.warnings = [], []
        pg.on("pageerror", lambda exc: pg.problems.append(f"pageerror: {exc}"))

        def console(msg: Any) -> None:
            if msg.type == "error":
                pg.problems.append(msg.text)
            elif msg.type == "warning":
                pg.warnings.append(msg.text)

        pg.on("console", console)
        pg.messages = {}  # seq -> the message frame the widget received

        def frame(payload: Any) -> None:
            data = json.loads(payload)
            if data.get("type") == "message":
                pg.messages[data["seq"]] = data
            elif data.get("type") == "update":  # what the bot learned after it went out
                pg.messages[data["seq"]] = {**pg.messages[data["seq"]], **data}

        pg.on("websocket", lambda ws: ws.on("framereceived", frame))
        if no_charset:

            async def bare(route: Any) -> None:
                res = await route.fetch()
                await route.fulfill(response=res, headers={"Content-Type": "text/javascript"})

            await pg.route("**/widget.js", bare)
        await pg.goto(f"{shop.origin}/?{urlencode({**(query or {}), **page})}")
        await pg.locator(".botkit-launcher").wait_for()
        yield pg
    finally:
        await context.close()


# What the visitor reads and hears of the widget itself (the panel opened).
WORDS = f"""() => {{
  const w = {WIDGET}, q = s => w.querySelector(s);
  return {{
    launcher: q('.botkit-launcher').getAttribute('aria-label'),
    title: q('.botkit-title').textContent,
    close: q('.botkit-close').getAttribute('aria-label'),
    log: q('.botkit-log').getAttribute('aria-label'),
    label: q('label.botkit-sr').textContent,
    placeholder: q('.botkit-input').placeholder,
    send: q('.botkit-send').textContent,
    lang: q('.botkit-root').getAttribute('lang'),
    dir: q('.botkit-root').getAttribute('dir'),
  }};
}}"""


async def _words(pg: Any) -> dict[str, str | None]:
    await pg.locator(".botkit-launcher").click()
    words: dict[str, str | None] = await pg.evaluate(WORDS)
    return words


# -- which language ------------------------------------------------------------------------


async def test_data_lang_gives_the_widget_german_words(shop: Shop, browser: Any) -> None:  # noqa: F811
    # Before: "Close chat", "Messages", "Your message", "Type a message…", "Send" on a
    # page that said its visitor reads German.
    async with _visit(browser, shop, html_lang="en", lang="de") as pg:
        assert await pg.get_by_role("button", name="Chat öffnen: Chat", exact=True).is_visible()
        assert await _words(pg) == {
            "launcher": "Chat schließen: Chat",
            "title": "Chat",
            "close": "Chat schließen",
            "log": "Nachrichten",
            "label": "Ihre Nachricht",
            "placeholder": "Nachricht eingeben…",
            "send": "Senden",
            "lang": "de",
            "dir": "ltr",
        }
        box = pg.get_by_label("Ihre Nachricht")
        await box.fill("Where is my order? It has not arrived yet.")  # (in English)
        await box.press("Enter")
        await _wait_reply(pg, 2)
        # Each message's language, as the server says it, is on its text (read out and
        # drawn as that language), whatever the widget's own: the reply is in English,
        # and so is the visitor's message once the bot has read it (an update frame).
        langs_js = (
            f"[...{WIDGET}.querySelectorAll('.botkit-text')].map(e => e.getAttribute('lang'))"
        )
        await pg.wait_for_function(f"{langs_js}[0] !== null")
        said = [pg.messages[seq]["language"] for seq in sorted(pg.messages)]
        assert await pg.evaluate(langs_js) == said == ["en", "en"], said
        # The cache keeps it: after a reload the message is shown from it, not replayed.
        await pg.reload()
        await _wait_reply(pg, 2)
        assert await pg.evaluate(langs_js) == ["en", "en"]
        assert not pg.problems and not pg.warnings, (pg.problems, pg.warnings)


@pytest.mark.parametrize(
    ("locale", "page", "launcher", "lang", "dir"),
    [
        # data-lang first, with its region dropped when the widget has no words for it.
        ("en-US", {"html_lang": "en", "lang": "pt-BR"}, "Abrir chat: Chat", "pt", "ltr"),
        ("en-US", {"lang": "fr_CA"}, "Ouvrir la discussion\u00a0: Discussion", "fr", "ltr"),
        # Chinese by its script: Taiwan reads Traditional characters, never Simplified.
        ("en-US", {"lang": "zh-TW"}, "開啟聊天\uff1a線上客服", "zh-Hant", "ltr"),
        ("en-US", {"lang": "zh-Hant-HK"}, "開啟聊天\uff1a線上客服", "zh-Hant", "ltr"),
        ("en-US", {"lang": "zh-CN"}, "打开聊天\uff1a在线客服", "zh-Hans", "ltr"),
        ("en-US", {"lang": "zh"}, "打开聊天\uff1a在线客服", "zh-Hans", "ltr"),
        # Then <html lang>, also when data-lang names a language the widget lacks.
        ("en-US", {"html_lang": "it"}, "Apri la chat: Chat", "it", "ltr"),
        ("en-US", {"html_lang": "nl-BE", "lang": "ko"}, "Chat openen: Chat", "nl", "ltr"),
        ("en-US", {"html_lang": "ru"}, "Открыть чат: Чат", "ru", "ltr"),
        ("en-US", {"html_lang": "tr"}, "Sohbeti aç: Sohbet", "tr", "ltr"),
        ("en-US", {"html_lang": "es-419"}, "Abrir chat: Chat", "es", "ltr"),
        # Then the browser's languages; the widget keeps the page's direction then.
        ("ja-JP", {}, "チャットを開く\uff1aチャット", "ja", None),
        ("ko-KR", {"html_lang": "ko"}, "Open chat: Chat", "en", None),
        # A site's own title, in the widget's words around it.
        ("de-DE", {"title": "Hilfe"}, "Chat öffnen: Hilfe", "de", None),
        # An English widget on a right-to-left page the site said reads English.
        ("en-US", {"html_lang": "ar", "dir": "rtl", "lang": "en"}, "Open chat: Chat", "en", "ltr"),
    ],
)
async def test_the_language_comes_from_the_page_then_the_browser(
    shop: Shop,
    browser: Any,  # noqa: F811
    locale: str,
    page: dict[str, str],
    launcher: str,
    lang: str,
    dir: str | None,
) -> None:
    async with _visit(browser, shop, locale=locale, query=page) as pg:
        name = await pg.locator(".botkit-launcher").get_attribute("aria-label")
        root = pg.locator(".botkit-root")
        assert (name, await root.get_attribute("lang"), await root.get_attribute("dir")) == (
            launcher,
            lang,
            dir,
        )
        assert not pg.problems and not pg.warnings, (pg.problems, pg.warnings)


async def _boxes(pg: Any) -> dict[str, list[float]]:
    boxes: dict[str, list[float]] = await pg.evaluate(
        f"""() => Object.fromEntries(['.botkit-panel', '.botkit-title', '.botkit-close',
              '.botkit-input', '.botkit-send', '.botkit-attach', '.botkit-in', '.botkit-out',
              '.botkit-launcher', '.botkit-badge'].map(s => {{
            const r = {WIDGET}.querySelector(s).getBoundingClientRect();
            return [s.slice(8), [r.left, r.right]]; }}))"""
    )
    return boxes


async def test_arabic_is_right_to_left_with_arabic_words(shop: Shop, browser: Any) -> None:  # noqa: F811
    # A page that says it is Arabic but not that it is right-to-left: the widget knows.
    async with _visit(browser, shop, html_lang="ar") as pg:
        words = await _words(pg)
        assert words == {
            "launcher": "إغلاق الدردشة: الدردشة",
            "title": "الدردشة",
            "close": "إغلاق الدردشة",
            "log": "الرسائل",
            "label": "رسالتك",
            "placeholder": "اكتب رسالة…",
            "send": "إرسال",
            "lang": "ar",
            "dir": "rtl",
        }
        dirs = await pg.evaluate(
            f"""() => ['.botkit-panel', '.botkit-input', '.botkit-status']
                  .map(s => getComputedStyle({WIDGET}.querySelector(s)).direction)"""
        )
        assert dirs == ["rtl", "rtl", "rtl"]  # the empty box too: its caret starts right
        box = pg.get_by_label("رسالتك")
        await box.fill("Where is my order?")  # English in it: left to right, as typed
        typed = f"getComputedStyle({WIDGET}.querySelector('.botkit-input')).direction"
        assert await pg.evaluate(typed) == "ltr"
        await box.press("Enter")
        await _wait_reply(pg, 2)
        await pg.get_by_role("button", name="إرسال صورة أو ملف PDF إلى موظف الدعم").wait_for()
        await pg.screenshot(path=str(ARTIFACTS / "widget-arabic.png"))
        b = await _boxes(pg)
        left, right = b["panel"]
        # Mirrored: the title at the right and the close button at the left; the
        # paperclip right of the message box and the send button left of it; the bot's
        # messages on the right (where a reader starts), the visitor's on the left.
        assert b["title"][1] > b["close"][1] and b["title"][0] > b["close"][0]
        assert b["attach"][0] >= b["input"][1] and b["send"][1] <= b["input"][0]
        assert right - b["out"][1] < 20 and b["out"][0] - left > 40
        assert b["in"][0] - left < 20 and right - b["in"][1] > 40
        assert not pg.problems, pg.problems


async def test_a_widget_read_in_another_encoding_speaks_english(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    """widget.js copied to a host that serves it without a charset, on a page in
    windows-1252: the browser reads it in the page's encoding, so every non-ASCII word
    would be garbled ("Chat Ã¶ffnen"). The widget notices and speaks English."""
    async with _visit(browser, shop, html_lang="de", charset="windows-1252") as pg:
        assert await pg.locator(".botkit-launcher").get_attribute("aria-label") == (
            "Chat öffnen: Chat"
        )  # served as UTF-8: German
    async with _visit(browser, shop, no_charset=True, html_lang="de", charset="windows-1252") as pg:
        assert await pg.locator(".botkit-launcher").get_attribute("aria-label") == (
            "Open chat: Chat"
        )
        assert pg.warnings == [
            "botkit widget: widget.js was not read as UTF-8 (serve it with charset=utf-8);"
            " English only"
        ]
        assert not pg.problems, pg.problems


# -- a site's own words ------------------------------------------------------------------


async def test_a_site_overrides_one_text_for_all_languages_or_for_one(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    texts = {
        "send": "Go",  # every language
        "de": {"placeholder": "Ihre Frage…"},  # German only
        "fr": {"send": "Zut"},  # not shown: the page is German
    }
    async with _visit(browser, shop, lang="de-AT", texts=json.dumps(texts)) as pg:
        words = await _words(pg)
        assert (words["send"], words["placeholder"], words["label"]) == (
            "Go",
            "Ihre Frage…",
            "Ihre Nachricht",
        )
        assert not pg.problems and not pg.warnings, (pg.problems, pg.warnings)

    # A language the widget does not ship, added by the site: its words where it has
    # some, English where it has none, and lang= says which.
    korean = {"ko": {"title": "채팅", "open": "채팅 열기: {title}", "send": "보내기"}}
    async with _visit(browser, shop, lang="ko-KR", texts=json.dumps(korean)) as pg:
        assert await pg.locator(".botkit-launcher").get_attribute("aria-label") == "채팅 열기: 채팅"
        words = await _words(pg)
        assert (words["send"], words["close"], words["lang"], words["dir"]) == (
            "보내기",
            "Close chat",
            "ko",
            "ltr",
        )
        assert not pg.problems and not pg.warnings, (pg.problems, pg.warnings)


@pytest.mark.parametrize(
    "texts",
    [
        "{not json",
        "[1, 2]",
        '"Send"',
        "null",
        "42",
        json.dumps(
            {
                "send": 5,  # not a string
                "placeholder": "   ",  # a control without a name
                "sned": "Go",  # a typo
                "__proto__": {"send": "Polluted"},
                "constructor": "x",
                "de": "Los",  # a language that is not an object
                "en": {"send": ["x"], "bogus": "y", "title": None},
                "closeButton": "Shut",  # the one good text: it is used
            }
        ),
    ],
)
async def test_hostile_overrides_are_ignored_with_a_warning(
    shop: Shop,
    browser: Any,  # noqa: F811
    texts: str,
) -> None:
    async with _visit(browser, shop, lang="en", texts=texts) as pg:
        words = await _words(pg)
        shut = "Shut" if "Shut" in texts else "Close chat"
        assert (words["send"], words["placeholder"], words["title"], words["close"]) == (
            "Send",
            "Type a message\u2026",
            "Chat",
            shut,
        )
        assert await pg.evaluate("({}).send === undefined && Object.prototype.send === undefined")
        assert pg.warnings and all(w.startswith("botkit widget: data-texts") for w in pg.warnings)
        box = pg.get_by_label("Your message")  # and the widget works
        await box.fill("still here?")
        await box.press("Enter")
        await _wait_reply(pg, 2)
        assert not pg.problems, pg.problems


async def test_every_language_has_every_text_with_its_placeholders(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    """The table in widget.js, read by the browser: a language missing a text would show
    it in English; one missing a placeholder would drop the title, a count or a name."""
    connector = shop.bot.connectors["web"]
    assert isinstance(connector, WebConnector)
    async with ClientSession() as http, http.get(f"{connector.url}/widget.js") as res:
        source = await res.text()
    async with _visit(browser, shop) as pg:
        problems = await pg.evaluate(
            """src => {
              const start = src.indexOf('var TEXTS = {'), end = src.indexOf('}; // end of TEXTS');
              const table = Function('return ' + src.slice(start + 12, end + 1))();
              const marks = s => (s.match(/\\{\\w+\\}/g) || []).sort().join();
              const en = table.en, out = [];
              for (const [lang, words] of Object.entries(table)) {
                const forms = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
                for (const key of Object.keys(en)) {
                  if (key.startsWith('unread') && key !== 'unreadOther') continue;
                  if (typeof words[key] !== 'string') out.push(`${lang}: no ${key}`);
                  else if (marks(words[key]) !== marks(en[key])) out.push(`${lang}: ${key}`);
                }
                for (const form of forms) {
                  const key = 'unread' + form[0].toUpperCase() + form.slice(1);
                  if (form !== 'other' && form !== 'zero' && typeof words[key] !== 'string')
                    out.push(`${lang}: no ${key}`);
                }
                for (const key of Object.keys(words)) {
                  if (!(key in en) && !/^unread(Zero|One|Two|Few|Many)$/.test(key))
                    out.push(`${lang}: unknown ${key}`);
                  if (/^unread/.test(key) && !/^[^{}]*(\\{count\\}[^{}]*)?$/.test(words[key]))
                    out.push(`${lang}: ${key}`);
                }
              }
              return [Object.keys(table), out];
            }""",
            source,
        )
        langs, missing = problems
        assert set(langs) >= set("en es fr de pt it nl zh-Hans ja ar ru tr".split())
        assert missing == []


# -- the unread count ----------------------------------------------------------------------


async def _launcher(pg: Any) -> tuple[str, str | None]:
    """The launcher's accessible name (as Chromium computes it) and its badge, if shown."""
    name: str = await pg.evaluate(
        f"{WIDGET}.querySelector('.botkit-launcher').getAttribute('aria-label')"
    )
    badge = pg.locator(".botkit-badge")
    return name, (await badge.text_content() if await badge.is_visible() else None)


async def test_replies_while_the_panel_is_closed_are_counted_on_the_launcher(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    async with _visit(browser, shop, html_lang="en", title="Shop help") as pg:
        await pg.get_by_role("button", name="Open chat").click()
        box = pg.get_by_label("Your message")
        await box.fill("hello")  # a reply read as it comes: not counted
        await box.press("Enter")
        await _wait_reply(pg, 2)
        # A reply being written while the visitor closes the panel (the echo of 40 words
        # streams for about a second).
        await box.fill(" ".join(["word"] * 40))
        await box.press("Enter")
        await box.press("Escape")
        await _wait_reply(pg, 4)
        # Before: nothing on the launcher told the visitor a reply had come.
        assert await _launcher(pg) == ("Open chat: Shop help \u2014 1 new message", "1")
        assert await pg.get_by_role(
            "button", name="Open chat: Shop help \u2014 1 new message", exact=True
        ).is_visible()
        (conversation, *_) = await shop.bot.store.conversations_with_status(["bot"])
        await shop.bot.agent_replies.send(conversation.id, "Sam here.", agent="Sam", take_over=True)
        await _wait_reply(pg, 5)
        assert await _launcher(pg) == ("Open chat: Shop help \u2014 2 new messages", "2")

        # The next page still knows (the count is kept with the conversation).
        await pg.goto(shop.origin + "/?html_lang=en&title=Shop+help&page=2")
        await _wait_reply(pg, 5)
        assert await _launcher(pg) == ("Open chat: Shop help \u2014 2 new messages", "2")
        await pg.screenshot(path=str(ARTIFACTS / "widget-unread.png"))

        # Opening the panel reads them; closing it again shows no count.
        await pg.get_by_role("button", name="Open chat").click()
        assert await _launcher(pg) == ("Close chat: Shop help", None)
        await pg.keyboard.press("Escape")
        assert await _launcher(pg) == ("Open chat: Shop help", None)
        await pg.reload()
        await _wait_reply(pg, 5)
        assert await _launcher(pg) == ("Open chat: Shop help", None)

        # A reply with the panel open is read as it comes.
        await pg.get_by_role("button", name="Open chat").click()
        await shop.bot.agent_replies.send(conversation.id, "Anything else?", agent="Sam")
        await _wait_reply(pg, 6)
        await pg.keyboard.press("Escape")
        assert await _launcher(pg) == ("Open chat: Shop help", None)
        assert not pg.problems, pg.problems


async def test_the_unread_count_is_said_in_the_widgets_language(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    """Plural forms by Intl.PluralRules: Arabic says two in a word of its own, Russian
    has forms for 1, 2-4 and 5-20."""
    for page, said in (
        ({"html_lang": "ar"}, ["رسالة جديدة واحدة", "رسالتان جديدتان", "{3} رسائل جديدة"]),
        ({"html_lang": "ru"}, ["1 новое сообщение", "2 новых сообщения", "3 новых сообщения"]),
    ):
        async with _visit(browser, shop, query=page) as pg:
            await pg.locator(".botkit-launcher").click()
            box = pg.locator(".botkit-input")
            await box.fill("hello")
            await box.press("Enter")
            await _wait_reply(pg, 2)
            await box.press("Escape")
            (conversation, *_) = await shop.bot.store.conversations_with_status(["bot"])
            for n, words in enumerate(said, start=1):
                await shop.bot.agent_replies.send(conversation.id, f"Reply {n}", take_over=True)
                await _wait_reply(pg, 2 + n)
                name, badge = await _launcher(pg)
                # (Digits as Intl writes them in the language: Arabic's may be ٣ or 3.)
                three = await pg.evaluate(f"new Intl.NumberFormat('{page['html_lang']}').format(3)")
                assert name.endswith(words.replace("{3}", three)), name
            if page["html_lang"] == "ar":  # the badge at the launcher's top left
                b = await _boxes(pg)
                assert badge == three and b["badge"][0] < b["launcher"][0]
                await pg.screenshot(path=str(ARTIFACTS / "widget-arabic-unread.png"))
            assert not pg.problems, pg.problems


# -- Escape --------------------------------------------------------------------------------

PAGE_ESCAPES = """() => {
  window.__escapes = [];
  for (const [target, name] of [[window, 'window'], [document, 'document'],
                                [document.body, 'body']])
    for (const type of ['keydown', 'keyup'])
      target.addEventListener(type, e => {
        if (e.key === 'Escape') window.__escapes.push(name + ':' + type);
      });
}"""


async def test_escape_that_closes_the_chat_does_not_reach_the_page(
    shop: Shop,
    browser: Any,  # noqa: F811
) -> None:
    async with _visit(browser, shop, html_lang="en") as pg:
        await pg.evaluate(PAGE_ESCAPES)
        await pg.get_by_role("button", name="Open chat").click()
        await pg.get_by_label("Your message").press("Escape")
        assert await pg.locator(".botkit-panel").is_hidden()
        # Before: the page's own Escape handlers ran as well (a menu or a dialog of the
        # page under the chat closed with it).
        assert await pg.evaluate("window.__escapes") == []

        # With the panel closed the widget does nothing with Escape: it is the page's.
        assert await pg.evaluate(f"{WIDGET}.activeElement.classList.contains('botkit-launcher')")
        await pg.keyboard.press("Escape")
        assert await pg.evaluate("window.__escapes") == [
            "body:keydown", "document:keydown", "window:keydown",
            "body:keyup", "document:keyup", "window:keyup",
        ]  # fmt: skip
        assert await pg.locator(".botkit-panel").is_hidden()
        await pg.evaluate("document.body.focus()")  # and from the page itself
        await pg.keyboard.press("Escape")
        assert len(await pg.evaluate("window.__escapes")) == 12
        assert await pg.locator(".botkit-panel").is_hidden()
        assert not pg.problems, pg.problems
