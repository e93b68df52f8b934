/*
 * botkit chat widget. One script tag, no build step, no dependencies:
 *
 *   <script src="https://chat.example.com/widget.js" async
 *           data-site-key="shop" data-title="Chat with us" data-lang="en"
 *           data-theme-color="#2563eb"
 *           data-user-id="42" data-user-hash="<hex HMAC-SHA256(user id, site secret)>">
 *   </script>
 *
 * Safety rule of this file: text that came from the network (bot, agent or visitor) only
 * ever reaches the page through textContent or through elements this file creates (the
 * tiny markdown subset below). No HTML string is ever parsed, and nothing is evaluated.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__botkitWidgetLoaded) return;
  window.__botkitWidgetLoaded = true;

  var ds = script.dataset;
  var server = new URL(ds.server || "/", script.src || location.href);
  var WS_URL = (server.protocol === "https:" ? "wss:" : "ws:") + "//" + server.host + "/ws";
  var COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
  var cfg = {
    siteKey: ds.siteKey || "",
    userId: ds.userId || null,
    userHash: ds.userHash || null,
    userToken: ds.userToken || null,
    title: (ds.title || "Chat").slice(0, 80),
    lang: ds.lang || document.documentElement.lang || "en",
    color: COLOR.test(ds.themeColor || "") ? ds.themeColor : "#2563eb",
  };
  var CACHE_MAX = 200;
  var STORE_KEY = "botkit:" + server.host + ":" + cfg.siteKey + (cfg.userId ? ":u:" + cfg.userId : "");

  // ---- persisted state (token, last seq, recent messages, unsent messages) ------------
  var state = { token: null, lastSeq: 0, cache: [], outbox: [], open: false };
  function load() {
    try {
      var raw = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (raw && typeof raw === "object") {
        state.token = typeof raw.token === "string" ? raw.token : null;
        state.lastSeq = Number.isInteger(raw.lastSeq) && raw.lastSeq > 0 ? raw.lastSeq : 0;
        state.cache = Array.isArray(raw.cache) ? raw.cache.filter(validCached) : [];
        state.outbox = Array.isArray(raw.outbox) ? raw.outbox.filter(validOutbox) : [];
        state.open = raw.open === true;
        // The cache must end where lastSeq ends, or the gap would never be asked for.
        var top = state.cache.length ? state.cache[state.cache.length - 1].seq : 0;
        if (top !== state.lastSeq) { state.cache = []; state.lastSeq = 0; }
      }
    } catch (e) { /* storage blocked or corrupt: start fresh */ }
  }
  function validCached(m) {
    return m && Number.isInteger(m.seq) && typeof m.text === "string" &&
      (m.direction === "in" || m.direction === "out");
  }
  function validOutbox(m) {
    return m && typeof m.client_id === "string" && typeof m.text === "string";
  }
  function save() {
    try { localStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  // ---- DOM --------------------------------------------------------------------------
  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function chatIcon() {
    // A speech bubble drawn with DOM calls (emoji fonts are not everywhere).
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.append(path);
    return svg;
  }
  var uid = "botkit-" + Math.random().toString(36).slice(2, 8);
  var css = el("link", null, { rel: "stylesheet", href: new URL("widget.css", server).href });
  var root = el("div", "botkit-root", { lang: cfg.lang });
  root.style.setProperty("--botkit-accent", cfg.color);
  var launcher = el("button", "botkit-launcher", {
    type: "button", "aria-expanded": "false", "aria-controls": uid + "-panel",
  });
  launcher.setAttribute("aria-label", "Open chat: " + cfg.title);
  launcher.append(chatIcon());
  var panel = el("section", "botkit-panel", {
    id: uid + "-panel", role: "dialog", "aria-labelledby": uid + "-title",
  });
  panel.hidden = true;
  var header = el("header", "botkit-header");
  var heading = el("h2", "botkit-title", { id: uid + "-title" });
  heading.textContent = cfg.title;
  var closeBtn = el("button", "botkit-close", { type: "button", "aria-label": "Close chat" });
  closeBtn.textContent = "\u00D7";
  header.append(heading, closeBtn);
  var status = el("div", "botkit-status", { role: "status" });
  var log = el("ol", "botkit-log", {
    role: "log", "aria-live": "polite", "aria-label": "Messages", tabindex: "0",
  });
  var typing = el("div", "botkit-typing", { "aria-hidden": "true" });
  typing.append(el("span"), el("span"), el("span"));
  typing.hidden = true;
  var form = el("form", "botkit-form");
  var label = el("label", "botkit-sr", { for: uid + "-input" });
  label.textContent = "Your message";
  var input = el("textarea", "botkit-input", {
    id: uid + "-input", rows: "1", placeholder: "Type a message\u2026", autocomplete: "off",
  });
  var sendBtn = el("button", "botkit-send", { type: "submit" });
  sendBtn.textContent = "Send";
  form.append(label, input, sendBtn);
  panel.append(header, status, log, typing, form);
  root.append(launcher, panel);

  // ---- safe rendering ---------------------------------------------------------------
  // **bold**, *italic*, `code`, [label](http(s)://...) and bare http(s) links. Nothing
  // else is interpreted; everything else is text.
  var TOKEN = /\*\*([^*\n]{1,500})\*\*|`([^`\n]{1,500})`|\[([^\]\n]{1,200})\]\((https?:\/\/[^\s()<>]{1,2000})\)|(https?:\/\/[^\s<>()"']{1,2000})|\*([^*\n]{1,500})\*/g;
  function safeHref(raw) {
    try {
      var url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }
  function link(href, text) {
    var safe = safeHref(href);
    if (!safe) return document.createTextNode(text);
    var a = el("a", null, { href: safe, target: "_blank", rel: "noopener noreferrer nofollow" });
    a.textContent = text;
    return a;
  }
  function styled(tag, text) { var n = el(tag); n.textContent = text; return n; }
  function renderMarkdown(node, text) {
    node.textContent = "";
    var last = 0, m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > last) node.append(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) node.append(styled("strong", m[1]));
      else if (m[2] !== undefined) node.append(styled("code", m[2]));
      else if (m[3] !== undefined) node.append(link(m[4], m[3]));
      else if (m[5] !== undefined) node.append(link(m[5], m[5]));
      else node.append(styled("em", m[6]));
      last = TOKEN.lastIndex;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  // ---- message list -----------------------------------------------------------------
  var bySeq = {};      // seq -> bubble
  var byClient = {};   // client_id -> pending bubble
  var byStream = {};   // stream_id -> streaming bubble

  function bubble(direction, text, markdown) {
    var li = el("li", "botkit-msg botkit-" + (direction === "in" ? "in" : "out"));
    var body = el("div", "botkit-text");
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    var who = el("span", "botkit-sr");
    who.textContent = direction === "in" ? "You: " : cfg.title + ": ";
    li.append(who, body);
    log.append(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }
  function setText(li, text, markdown) {
    var body = li.querySelector(".botkit-text");
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    log.scrollTop = log.scrollHeight;
  }
  function remember(msg) {
    if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;
    state.cache.push({ seq: msg.seq, direction: msg.direction, text: msg.text });
    if (state.cache.length > CACHE_MAX) state.cache.splice(0, state.cache.length - CACHE_MAX);
    save();
  }
  function onStored(msg) {
    if (!Number.isInteger(msg.seq) || typeof msg.text !== "string") return;
    if (bySeq[msg.seq]) return; // already shown: never twice
    var out = msg.direction !== "in";
    var li = (msg.client_id && byClient[msg.client_id]) || (msg.stream_id && byStream[msg.stream_id]);
    if (li) {
      setText(li, msg.text, out);
      li.classList.remove("botkit-pending", "botkit-streaming");
      li.removeAttribute("aria-busy");
      if (msg.client_id) { delete byClient[msg.client_id]; dropOutbox(msg.client_id); }
      if (msg.stream_id) delete byStream[msg.stream_id];
    } else {
      li = bubble(msg.direction, msg.text, out);
    }
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
    if (msg.status === "failed") li.classList.add("botkit-failed");
    remember(msg);
    if (out) typing.hidden = Object.keys(byStream).length === 0;
  }
  function onAck(msg) {
    var li = byClient[msg.client_id];
    dropOutbox(msg.client_id);
    if (!li) return;
    delete byClient[msg.client_id];
    if (bySeq[msg.seq]) { li.remove(); return; } // already shown via history
    li.classList.remove("botkit-pending");
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
  }
  function onStream(msg) {
    var li = byStream[msg.stream_id];
    if (!li) {
      li = bubble("out", msg.text || "", false);
      li.classList.add("botkit-streaming");
      li.setAttribute("aria-busy", "true"); // read once complete, not token by token
      byStream[msg.stream_id] = li;
    } else if (msg.text) {
      setText(li, msg.text, false);
    }
    typing.hidden = Boolean(msg.text);
  }
  function onDelta(msg) {
    var li = byStream[msg.stream_id];
    if (!li || typeof msg.text !== "string") return;
    var body = li.querySelector(".botkit-text");
    body.append(document.createTextNode(msg.text));
    typing.hidden = true;
    log.scrollTop = log.scrollHeight;
  }
  function onStreamEnd(msg) {
    var li = byStream[msg.stream_id];
    if (li) { li.remove(); delete byStream[msg.stream_id]; } // its stored copy came another way
    typing.hidden = Object.keys(byStream).length === 0 ? true : typing.hidden;
  }
  function dropOutbox(clientId) {
    state.outbox = state.outbox.filter(function (m) { return m.client_id !== clientId; });
    save();
  }

  // ---- connection -------------------------------------------------------------------
  var ws = null, attempt = 0, retryTimer = null, idle = false, maxBytes = 16384;
  function setStatus(text) { status.textContent = text; }
  function connect() {
    if (ws || !cfg.siteKey) return;
    clearTimeout(retryTimer);
    idle = false;
    setStatus("Connecting\u2026");
    var sock = new WebSocket(WS_URL);
    ws = sock;
    sock.onopen = function () {
      var hello = { type: "hello", site_key: cfg.siteKey, after_seq: state.lastSeq, lang: cfg.lang };
      if (cfg.userId) { hello.user_id = cfg.userId; hello.user_hash = cfg.userHash; }
      else if (cfg.userToken) hello.user_token = cfg.userToken;
      else if (state.token) hello.token = state.token;
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      switch (msg.type) {
        case "welcome": onWelcome(msg); break;
        case "message": onStored(msg); break;
        case "ack": onAck(msg); break;
        case "stream": onStream(msg); break;
        case "delta": onDelta(msg); break;
        case "stream_end": onStreamEnd(msg); break;
        case "error": onError(msg); break;
        default: break;
      }
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      if (ev.code === 4401 && state.token && !cfg.userId && !cfg.userToken) {
        // Our stored session is no longer valid: start a new conversation.
        resetConversation();
        connect();
        return;
      }
      if (ev.code === 4401) { setStatus("Chat is not available on this page."); return; }
      if (ev.code === 4408) { idle = true; setStatus(""); return; } // reconnect on use
      var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      attempt += 1;
      setStatus("Offline. Reconnecting\u2026");
      retryTimer = setTimeout(connect, delay);
    };
  }
  function onWelcome(msg) {
    attempt = 0;
    if (typeof msg.token === "string") state.token = msg.token;
    if (Number.isInteger(msg.max_message_bytes)) maxBytes = msg.max_message_bytes;
    save();
    setStatus("");
    state.outbox.forEach(transmit); // resend unacknowledged: the server answers once
  }
  function onError(msg) {
    var li = msg.client_id && byClient[msg.client_id];
    var retry = msg.code === "rate_limited" || msg.code === "rejected" || msg.code === "unavailable";
    if (retry && msg.client_id) {
      setStatus(msg.code === "rate_limited"
        ? "You are sending messages quickly; retrying shortly\u2026"
        : "Message not delivered yet; retrying shortly\u2026");
      var wait = Math.min(60, Math.max(0.2, Number(msg.retry_after) || 1)) * 1000;
      setTimeout(function () {
        var item = state.outbox.filter(function (m) { return m.client_id === msg.client_id; })[0];
        if (item) transmit(item);
        setStatus("");
      }, wait);
      return;
    }
    if (li) {
      li.classList.add("botkit-failed");
      delete byClient[msg.client_id];
      dropOutbox(msg.client_id);
    }
    setStatus(typeof msg.message === "string" ? msg.message.slice(0, 300) : "Error");
  }
  function resetConversation() {
    state.token = null; state.lastSeq = 0; state.cache = [];
    bySeq = {}; byStream = {};
    Array.prototype.slice.call(log.querySelectorAll(".botkit-msg:not(.botkit-pending)"))
      .forEach(function (n) { n.remove(); });
    save();
  }
  function transmit(item) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "message", client_id: item.client_id, text: item.text }));
    }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  function send() {
    var text = input.value.trim();
    if (!text) return;
    if (new TextEncoder().encode(text).length > maxBytes - 256) {
      setStatus("This message is too long. Please shorten it.");
      return;
    }
    var item = { client_id: newId(), text: text };
    var li = bubble("in", text, false);
    li.classList.add("botkit-pending");
    byClient[item.client_id] = li;
    state.outbox.push(item);
    save();
    input.value = "";
    if (ws) transmit(item); else connect();
  }

  // ---- interaction ------------------------------------------------------------------
  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + cfg.title);
    state.open = open;
    save();
    if (open) { connect(); input.focus(); }
  }
  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  closeBtn.addEventListener("click", function () { setOpen(false); launcher.focus(); });
  panel.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); send(); input.focus(); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  input.addEventListener("focus", function () { if (idle) connect(); });
  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });

  // ---- start ------------------------------------------------------------------------
  load();
  state.cache.forEach(function (m) {
    bySeq[m.seq] = bubble(m.direction, m.text, m.direction === "out");
    bySeq[m.seq].dataset.seq = String(m.seq);
  });
  state.outbox.forEach(function (m) {
    var li = bubble("in", m.text, false);
    li.classList.add("botkit-pending");
    byClient[m.client_id] = li;
  });
  function mount() {
    document.head.append(css);
    document.body.append(root);
    if (state.open) setOpen(true);
    else if (state.token || state.outbox.length) connect(); // catch up on replies
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
