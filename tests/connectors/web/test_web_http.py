"""Health endpoints, pages and headers, OpenAPI, long polling, config validation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientSession
from pydantic import ValidationError
from web_helpers import ORIGIN, SITE_KEY, MakeWeb, WebHarness

from botkit.config import settings_from_mapping
from botkit.config.components import resolve_components
from botkit.errors import ConfigError
from connectors.web import WebConfig, WebConnector
from connectors.web.pages import STATIC_DIR


async def test_health_endpoints(make_web: MakeWeb) -> None:
    web = await make_web()
    token = await web.session()
    resp = await web.client.get("/healthz")
    assert (resp.status, await resp.json()) == (200, {"status": "ok"})
    resp = await web.client.get("/readyz")
    body = await resp.json()
    assert (resp.status, body["status"]) == (200, "ready")  # the contract: "status"
    assert (body["store"], body["backend"], body["channels"]) == ("ok", "ok", {"web": "up"})
    # Once the bot stops (store closed, no longer accepting) readiness goes away, liveness not.
    await web.bot.close()
    resp = await web.client.get("/readyz")
    body = await resp.json()
    assert (resp.status, body["status"]) == (503, "not_ready")
    assert body["not_ready"][0] == "accepting" and body["accepting"] is False
    assert (await web.client.get("/healthz")).status == 200
    # A message sent now is refused with "retry later", not lost silently, and not
    # with the busy reply's words: the server is going away (503 shutting_down).
    resp = await web.client.post(
        "/api/messages",
        json={"client_id": "late", "text": "anyone there?"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    body = await resp.json()
    assert (body["error"], body["retry_after"]) == ("shutting_down", 5.0)
    assert "restarting" in body["message"]


async def test_demo_page_has_strict_csp_and_escaped_settings(make_web: MakeWeb) -> None:
    web = await make_web(page_title='Help "<script>alert(1)</script>', page_language="pt-BR")
    resp = await web.client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe" not in csp and "*" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    html = await resp.text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'lang="pt-BR"' in html and f'data-site-key="{SITE_KEY}"' in html
    assert html.count("<script") == 1  # the widget tag, nothing inline
    assert "style=" not in html


async def test_csp_host_cannot_inject_directives(web: WebHarness) -> None:
    resp = await web.client.get("/", headers={"Host": "evil; script-src *"})
    assert "script-src *" not in resp.headers["Content-Security-Policy"]


async def test_demo_page_can_be_switched_off(make_web: MakeWeb) -> None:
    web = await make_web(serve_demo_page=False)
    resp = await web.client.get("/")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert (await web.client.get("/widget.js")).status == 200  # embedding still works


async def test_widget_assets(web: WebHarness) -> None:
    js = await web.client.get("/widget.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    assert js.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    source = await js.text()
    # The safety rule of the widget, checked on its source.
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "document.write"):
        assert forbidden not in source
    css = await web.client.get("/widget.css")
    assert css.status == 200 and css.content_type == "text/css"
    for path in ("/widget.jsx", "/openapi.json", "/demo.html", "/static/widget.js", "/../x"):
        assert (await web.client.get(path)).status == 404, path


async def test_openapi_document(web: WebHarness) -> None:
    resp = await web.client.get("/api/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    spec = await resp.json()
    assert spec["openapi"].startswith("3.1")
    routes = {
        (resource.canonical, method.lower())
        for route in web.client.app.router.routes()
        for resource, method in [(route.resource, route.method)]
        if resource is not None and method != "HEAD"
    }
    documented = {(path, m) for path, ops in spec["paths"].items() for m in ops}
    served = {r for r in routes if not r[0].startswith("/{")} - {("/", "get")}
    assert served <= documented, served - documented
    # Same file on disk: what the package ships is what is served.
    assert spec == json.loads((STATIC_DIR / "openapi.json").read_text())


async def test_long_poll_wakes_on_new_message(web: WebHarness) -> None:
    token = await web.session()
    # The poll would wait 30 s: woken, it ends long before (15 s is ample under load).
    poll = asyncio.create_task(web.history(token, after_seq=0, wait=30))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await web.post(token, "lp", "wake up")
    async with asyncio.timeout(15):
        messages = await poll
    assert messages[0]["text"] == "wake up"
    # With nothing new, it returns empty after the wait.
    resp = await web.client.get(
        "/api/messages",
        params={"after_seq": 0, "wait": "0.1"},
        headers={"Authorization": f"Bearer {await web.session()}"},
    )
    assert (await resp.json()) == {"messages": [], "last_seq": 0}


async def test_connector_serves_on_a_real_port(make_web: MakeWeb) -> None:
    web = await make_web(port=0)
    connector = web.connector
    await connector.connect()
    try:
        # The demo page's own origin is allowed automatically once the port is known.
        own = f"http://127.0.0.1:{connector.port}"
        async with ClientSession() as http:
            resp = await http.get(f"{own}/")
            assert resp.status == 200
            ws = await http.ws_connect(f"{own}/ws", headers={"Origin": own})
            await ws.send_json({"type": "hello", "site_key": SITE_KEY})
            assert (await ws.receive_json())["type"] == "welcome"
            await ws.close()
        # A second connector on the same port fails with a clear error.
        clash = WebConnector(connector.config.model_copy(update={"port": connector.port}), web.bot)
        with pytest.raises(Exception, match="cannot listen"):
            await clash.connect()
    finally:
        await connector.disconnect()
        await connector.disconnect()  # twice is fine


def test_config_validation() -> None:
    base = {"allowed_origins": [ORIGIN]}
    cfg = WebConnector.parse_config(base)
    assert isinstance(cfg, WebConfig) and cfg.port == 8080 and cfg.host == "127.0.0.1"
    bad: list[dict[str, Any]] = [
        {"allowed_origins": ["*"]},
        {"allowed_origins": ["https://*.example.com"]},
        {"allowed_origins": ["https://shop.example/path"]},
        {"allowed_origins": ["ftp://shop.example"]},
        {"require_identity": True},  # needs a site secret
        {"site_secret": "short"},
        {"theme_color": "red; background:url(x)"},
        {"site_key": "has space"},
        {"page_language": "<en>"},
        {"port": 70000},
        {"unknown_key": 1},
        {"connection_rate": {"rate": 0, "burst": 1}},
    ]
    for raw in bad:
        with pytest.raises(ValidationError):
            WebConnector.parse_config({**base, **raw})
    assert WebConfig(allowed_origins=["HTTPS://Shop.Example:443/"]).allowed_origins == [
        "https://shop.example"
    ]


def test_config_through_settings_loader() -> None:
    """The site secret comes from the environment and never prints; errors name the key."""
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(
            {"connectors": {"web": {"site_secret": "${WEB_SECRET}", "allowed_origins": ["*"]}}},
            environ={"WEB_SECRET": "s3cret-value-0123456789"},
        )
    assert [p.path for p in info.value.problems] == ["connectors.web.allowed_origins"]
    assert "wildcard" in str(info.value) and "s3cret" not in str(info.value)
    settings = settings_from_mapping(
        {"connectors": {"web": {"site_secret": "${WEB_SECRET}"}}},
        environ={"WEB_SECRET": "s3cret-value-0123456789"},
    )
    specs, problems = resolve_components("connectors", settings.connectors)
    assert not problems
    config = specs[0].config
    assert isinstance(config, WebConfig) and config.site_secret is not None
    assert config.site_secret.get_secret_value() == "s3cret-value-0123456789"
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.model_dump())


async def test_bot_run_serves_the_web_channel_until_stopped(make_web: MakeWeb) -> None:
    web = await make_web(port=0)
    run = asyncio.create_task(web.bot.run())
    try:
        async with asyncio.timeout(30):  # run() binds the port in the background
            while web.connector.port is None:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.01)
        async with ClientSession() as http:
            resp = await http.get(f"{web.connector.url}/readyz")
            assert resp.status == 200
    finally:
        web.bot.stop()
        async with asyncio.timeout(30):
            await run
    async with ClientSession() as http:
        with pytest.raises(OSError):
            await http.get(f"{web.connector.url}/healthz")


async def test_history_replay_carries_the_client_id(web: WebHarness) -> None:
    # A client that lost its connection before the ack recognises its own message in
    # the replayed history by the id it sent it with, so it shows it once.
    token = await web.session()
    await web.post(token, "c-42", "where is my parcel?")
    history = await web.history(token, wait=5)
    inbound = [m for m in history if m["direction"] == "in"]
    assert [(m["seq"], m.get("client_id")) for m in inbound] == [(1, "c-42")]
