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
 * tiny markdown subset and the quick-reply buttons below). No HTML string is ever parsed,
 * and nothing is evaluated.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__botkitWidgetLoaded) return;
  window.__botkitWidgetLoaded = true;

  var ds = script.dataset;
  // The server is a directory (widget.css and ws sit beside widget.js), so a deployment
  // behind a path prefix (https://shop.example/chat/) works: default = where widget.js is.
  var server = new URL(ds.server || ".", script.src || location.href);
  if (server.pathname.slice(-1) !== "/") server.pathname += "/";
  server.search = "";
  server.hash = "";
  var wsUrl = new URL("ws", server);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  var WS_URL = wsUrl.href;
  var COLOR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
  var cfg = {
    siteKey: ds.siteKey || "",
    userId: ds.userId || null,
    userHash: ds.userHash || null,
    userToken: ds.userToken || null,
    title: (ds.title || "Chat").slice(0, 80),
    // The page's language is a hint for the bot's first answer; a page that declares
    // none sends none (an invented "en" would be remembered as the visitor's language).
    lang: ds.lang || document.documentElement.lang || null,
    color: COLOR.test(ds.themeColor || "") ? ds.themeColor : "#2563eb",
  };
  // Text on the theme colour: white, or black where white would be hard to read (a
  // light brand colour such as yellow), by WCAG relative luminance (above ~0.18 black
  // text contrasts more than white).
  function textOn(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h.replace(/./g, "$&$&");
    var lum = [0, 2, 4].map(function (i) {
      var c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return l > 0.179 ? "#111827" : "#fff";
  }
  var CACHE_MAX = 200, OUTBOX_MAX = 50, MAX_BUTTONS = 10;
  var STABLE_MS = 10000; // a socket up this long resets the reconnect backoff
  var encoder = new TextEncoder();

  // ---- who this page says the visitor is --------------------------------------------
  function b64urlText(part) {
    try {
      var b64 = part.replace(/-/g, "+").replace(/_/g, "/");
      var bin = atob(b64 + "===".slice((b64.length + 3) % 4));
      var bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (e) { return null; }
  }
  function jwtSubject(token) {
    // Read, never verified: it only picks the storage slot. The server verifies the JWT.
    try {
      var claims = JSON.parse(b64urlText(token.split(".")[1]) || "null");
      return claims && typeof claims.sub === "string" && claims.sub ? claims.sub : null;
    } catch (e) { return null; }
  }
  function whoOf(token) {
    // "u:<user id>" or "s:<session id>", read from our own session token v1.<kind>.<b64>...
    if (typeof token !== "string") return null;
    var p = token.split(".");
    if (p.length !== 5 || p[0] !== "v1" || (p[1] !== "u" && p[1] !== "s")) return null;
    var subject = b64urlText(p[2]);
    return subject === null ? null : p[1] + ":" + subject;
  }
  var signedIn = Boolean(cfg.userId || cfg.userToken);
  var subject = cfg.userId || (cfg.userToken ? jwtSubject(cfg.userToken) : null);
  // One localStorage slot per identity: a signed-in user's session token and messages
  // never land where a signed-out visitor (or another user) of this browser would read
  // them. A JWT whose subject cannot be read keeps its state in memory only.
  var SLOT_BASE = "botkit:" + server.host + (server.pathname === "/" ? "" : server.pathname) +
    ":" + cfg.siteKey;
  var STORE_KEY = subject ? SLOT_BASE + ":u:" + subject : SLOT_BASE;
  var persist = !signedIn || subject !== null;
  function fitsSlot(who) {
    if (!who) return true;
    return subject ? who === "u:" + subject : !signedIn && who.charAt(0) === "s";
  }
  function forgetOtherUsers() {
    // A shared computer: whoever signs in (or out) next must not inherit another user's
    // 30-day session token or read their messages from this browser's storage.
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && k !== STORE_KEY && k.indexOf(SLOT_BASE + ":u:") === 0) localStorage.removeItem(k);
      }
    } catch (e) { /* storage blocked */ }
  }

  // ---- persisted state (token, last seq, recent messages, unsent messages) ------------
  // who: the conversation the cache belongs to ("u:<id>" / "s:<id>", from the token).
  var state = { token: null, who: null, lastSeq: 0, cache: [], outbox: [], open: false };
  var finished = []; // client ids this tab is done with: never merged back into storage
  function readStored() {
    try {
      var raw = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      return raw && typeof raw === "object" ? raw : null;
    } catch (e) { return null; }
  }
  function load() {
    if (!persist) return;
    var raw = readStored();
    if (!raw) return;
    var token = typeof raw.token === "string" ? raw.token : null;
    var who = typeof raw.who === "string" ? raw.who : whoOf(token);
    if (!fitsSlot(who) || (token && !fitsSlot(whoOf(token)))) {
      // Written for someone else (an older widget kept signed-in users in the anonymous
      // slot): never shown, never presented.
      try { localStorage.removeItem(STORE_KEY); } catch (e) { /* ignore */ }
      return;
    }
    state.token = token;
    state.who = who;
    state.lastSeq = Number.isInteger(raw.lastSeq) && raw.lastSeq > 0 ? raw.lastSeq : 0;
    state.cache = Array.isArray(raw.cache) ? raw.cache.filter(validCached).map(cleanCached) : [];
    state.outbox = Array.isArray(raw.outbox) ? raw.outbox.filter(validOutbox).slice(-OUTBOX_MAX) : [];
    state.open = raw.open === true;
    // The cache must end where lastSeq ends, or the gap would never be asked for.
    var top = state.cache.length ? state.cache[state.cache.length - 1].seq : 0;
    if (top !== state.lastSeq) { state.cache = []; state.lastSeq = 0; }
  }
  function validCached(m) {
    return m && Number.isInteger(m.seq) && typeof m.text === "string" &&
      (m.direction === "in" || m.direction === "out");
  }
  function cleanCached(m) {
    var c = { seq: m.seq, direction: m.direction, text: m.text };
    if (m.direction !== "in" && agentName(m)) c.agent = agentName(m);
    var buttons = validButtons(m.buttons);
    if (buttons.length) c.buttons = buttons;
    var files = validFiles(m.files);
    if (files.length) c.files = files;
    if (m.failed === true) c.failed = true;
    return c;
  }
  function validOutbox(m) {
    return m && typeof m.client_id === "string" && typeof m.text === "string";
  }
  function save() {
    if (!persist) return;
    try {
      // Other tabs share this slot: keep the unsent messages they stored (union by
      // client_id), or a tab saving its own state would delete another tab's outbox.
      var outbox = state.outbox.slice(), have = {};
      outbox.forEach(function (m) { have[m.client_id] = true; });
      var stored = readStored();
      if (stored && Array.isArray(stored.outbox)) {
        stored.outbox.filter(validOutbox).forEach(function (m) {
          if (!have[m.client_id] && finished.indexOf(m.client_id) < 0) {
            have[m.client_id] = true;
            outbox.push(m);
          }
        });
      }
      localStorage.setItem(STORE_KEY, JSON.stringify({
        token: state.token, who: state.who, lastSeq: state.lastSeq, cache: state.cache,
        outbox: outbox.slice(-OUTBOX_MAX), open: state.open,
      }));
    } catch (e) { /* storage blocked or full */ }
  }
  // ---- DOM --------------------------------------------------------------------------
  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  // Icons are SVG drawn with DOM calls, never emoji: a system without an emoji font
  // shows an emoji as an empty box. Each is aria-hidden; its control has a text name.
  var SVG_NS = "http://www.w3.org/2000/svg";
  function icon(size, d, stroked) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", String(size));
    svg.setAttribute("height", String(size));
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    if (stroked) {
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2");
      path.setAttribute("stroke-linecap", "round");
    } else {
      path.setAttribute("fill", "currentColor");
    }
    svg.append(path);
    return svg;
  }
  function chatIcon() { // a speech bubble
    return icon(28, "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  }
  function clipIcon(size) { // a paperclip
    return icon(size, "M14 8v8a2 2 0 0 1-4 0V5.5a3.5 3.5 0 0 1 7 0V17a5 5 0 0 1-10 0V8", true);
  }
  var uid = "botkit-" + Math.random().toString(36).slice(2, 8);
  var css = el("link", null, { rel: "stylesheet", href: new URL("widget.css", server).href });
  css.addEventListener("load", function () { follow(); }); // the list scrolls from now on
  // The widget lives in a shadow root of its own element: the host page's rules (h2,
  // header, section, button, textarea, li::before...) cannot reach inside, and ours
  // cannot leak out. `:host` in widget.css stops inherited text styles at the border.
  var host = document.createElement("botkit-chat");
  var shadow = host.attachShadow({ mode: "open" });
  var root = el("div", "botkit-root", cfg.lang ? { lang: cfg.lang } : null);
  root.style.setProperty("--botkit-accent", cfg.color);
  root.style.setProperty("--botkit-on-accent", textOn(cfg.color));
  var launcher = el("button", "botkit-launcher", {
    type: "button", "aria-expanded": "false", "aria-controls": uid + "-panel",
  });
  launcher.setAttribute("aria-label", "Open chat: " + cfg.title);
  launcher.append(chatIcon());
  var panel = el("section", "botkit-panel", {
    id: uid + "-panel", role: "dialog", "aria-labelledby": uid + "-title", tabindex: "-1",
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
    dir: "auto",
  });
  var sendBtn = el("button", "botkit-send", { type: "submit" });
  sendBtn.textContent = "Send";
  // A file goes to the human agent of the conversation: the server says how big one may
  // be (0: not taken), and whether a person is there to take it.
  var FILE_TYPES = "image/jpeg,image/png,image/gif,image/webp,application/pdf";
  var fileInput = el("input", "botkit-sr", {
    type: "file", accept: FILE_TYPES, tabindex: "-1", "aria-hidden": "true",
  });
  var attachBtn = el("button", "botkit-attach", {
    type: "button", "aria-label": "Send a picture or a PDF to the support agent",
    title: "Send a picture or a PDF",
  });
  attachBtn.append(clipIcon(22));
  attachBtn.hidden = true;
  form.append(label, attachBtn, fileInput, input, sendBtn);
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
      else if (m[5] !== undefined) {
        // A sentence's own punctuation after a bare link is not part of it:
        // "see https://shop.example/returns." links to /returns.
        var url = m[5].replace(/[.,;:!?]+$/, "");
        node.append(link(url, url));
        if (url.length < m[5].length) node.append(document.createTextNode(m[5].slice(url.length)));
      }
      else node.append(styled("em", m[6]));
      last = TOKEN.lastIndex;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  // ---- message list -----------------------------------------------------------------
  var bySeq = {};      // seq -> bubble
  var byClient = {};   // client_id -> pending bubble
  var byStream = {};   // stream_id -> streaming bubble

  // The list follows new messages while the visitor is at its end; one who scrolled up
  // to read back is not pulled down by every word of a reply. Opening the panel and
  // sending a message go to the end.
  var atEnd = true;
  log.addEventListener("scroll", function () {
    atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  });
  function follow(always) {
    if (always) atEnd = true;
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  // A message a human agent wrote carries their name ("" when they gave none): shown above
  // the text, so the visitor sees a person has taken over. Plain text, like all names.
  function agentName(m) {
    return typeof m.agent === "string" ? (m.agent.slice(0, 100) || "Support agent") : null;
  }
  function bubble(direction, text, markdown, agent) {
    var li = el("li", "botkit-msg botkit-" + (direction === "in" ? "in" : "out"));
    // dir=auto: each message takes the direction of its own first strong letter, so an
    // Arabic reply on an English page (or English on a Hebrew page) keeps its
    // punctuation and word order; the bubble's side still follows the page.
    var body = el("div", "botkit-text", { dir: "auto" });
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    var who = el("span", "botkit-sr");
    who.textContent = direction === "in" ? "You: " : (agent || cfg.title) + ": ";
    li.append(who);
    if (agent) {
      var label = el("span", "botkit-agent", { dir: "auto" });
      label.textContent = agent;
      label.setAttribute("aria-hidden", "true"); // the screen-reader prefix says it
      li.append(label);
    }
    li.append(body);
    log.append(li);
    follow();
    return li;
  }
  function validFiles(list) {
    return (Array.isArray(list) ? list : []).filter(function (f) {
      return f && typeof f.name === "string" && Number.isInteger(f.size) && f.size >= 0;
    }).slice(0, 10).map(function (f) { return { name: f.name.slice(0, 200), size: f.size }; });
  }
  function sizeText(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return Math.round(n / 1024) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }
  function showFiles(li, files) {
    files.forEach(function (f) {
      var chip = el("div", "botkit-file");
      var kind = el("span", "botkit-sr");
      kind.textContent = "File: "; // what the paperclip says to the eye
      var name = el("span", null, { dir: "auto" });
      name.textContent = f.name;
      chip.append(clipIcon(14), kind, name, " (" + sizeText(f.size) + ")");
      li.append(chip);
    });
    if (files.length) follow();
  }
  function setText(li, text, markdown) {
    var body = li.querySelector(".botkit-text");
    if (markdown) renderMarkdown(body, text); else body.textContent = text;
    follow();
  }
  function markFailed(li, why) {
    setPending(li, null);
    li.classList.remove("botkit-streaming");
    li.removeAttribute("aria-busy");
    li.classList.add("botkit-failed");
    var note = li.querySelector(".botkit-note") || el("span", "botkit-note");
    note.textContent = why || "Not delivered";
    li.append(note);
  }
  // A message of the visitor's the server has not acknowledged yet says so in words,
  // shown and read out with the message (not by a paler colour alone). It goes by
  // itself: the outbox is sent again on every connect, after a reload too, so there is
  // nothing for the visitor to retry. The texts, like the widget's other words:
  var UNSENT = {
    sending: "Sending\u2026",
    waiting: "Not sent yet: waiting for the connection",
    retrying: "Not sent yet: trying again shortly",
  };
  // An ack comes within milliseconds: "Sending..." only for one that does not, so a
  // message is not announced (nor flickers) with it every time.
  var SENDING_NOTE_MS = 1000;
  function setPending(li, how) { // how: "sending", "waiting", "retrying"; null: done
    clearTimeout(li.botkitNoteTimer);
    var note = li.querySelector(".botkit-state");
    if (!how) {
      if (note) note.remove();
      li.classList.remove("botkit-pending", "botkit-unsent");
      return;
    }
    li.classList.add("botkit-pending");
    if (how === "sending" && !note) {
      li.botkitNoteTimer = setTimeout(function () { sayUnsent(li, UNSENT.sending); }, SENDING_NOTE_MS);
    } else {
      sayUnsent(li, UNSENT[how]);
    }
  }
  function sayUnsent(li, text) {
    var note = li.querySelector(".botkit-state");
    if (!note) {
      note = el("span", "botkit-note botkit-state");
      li.append(note);
    }
    if (note.textContent !== text) note.textContent = text; // unchanged: not read again
    li.classList.add("botkit-unsent");
  }
  function outboxWaits() { // no socket to send on, for now
    Object.keys(byClient).forEach(function (id) { setPending(byClient[id], "waiting"); });
  }
  // Quick replies: real buttons (keyboard, screen readers, 44 px targets), shown under the
  // newest message only; a click sends the button's value as the visitor's message.
  function validButtons(list) {
    if (!Array.isArray(list)) return [];
    var out = [];
    list.forEach(function (b) {
      if (!b || typeof b !== "object" || out.length >= MAX_BUTTONS) return;
      var label = typeof b.label === "string" && b.label.trim() ? b.label.trim() : "";
      var value = typeof b.value === "string" && b.value.trim() ? b.value.trim() : label;
      if (!label) label = value;
      if (label) out.push({ label: label.slice(0, 80), value: value });
    });
    return out;
  }
  function clearButtons() {
    Array.prototype.slice.call(log.querySelectorAll(".botkit-buttons"))
      .forEach(function (n) { n.remove(); });
  }
  function showButtons(li, buttons) {
    clearButtons();
    if (!buttons.length) return;
    var group = el("div", "botkit-buttons", { role: "group", "aria-label": "Quick replies" });
    buttons.forEach(function (b) {
      var btn = el("button", "botkit-quick", { type: "button", dir: "auto" });
      btn.textContent = b.label; // its accessible name, never markup
      btn.addEventListener("click", function () {
        queue(b.value);
        input.focus(); // the button itself is gone with its group
      });
      group.append(btn);
    });
    li.append(group);
    follow();
  }
  function remember(msg, buttons, failed, files) {
    if (msg.seq > state.lastSeq) state.lastSeq = msg.seq;
    var c = { seq: msg.seq, direction: msg.direction, text: msg.text };
    if (msg.direction !== "in" && agentName(msg)) c.agent = agentName(msg);
    if (buttons.length) c.buttons = buttons;
    if (files.length) c.files = files;
    if (failed) c.failed = true;
    state.cache.push(c);
    if (state.cache.length > CACHE_MAX) state.cache.splice(0, state.cache.length - CACHE_MAX);
    save();
  }
  function streamsLive() { return Object.keys(byStream).length > 0; }
  function onStored(msg) {
    if (!Number.isInteger(msg.seq) || msg.seq < 1 || typeof msg.text !== "string") return;
    var failed = msg.status === "failed";
    if (bySeq[msg.seq]) { // already shown: never twice, but a failure is still news
      if (failed) {
        markFailed(bySeq[msg.seq]);
        state.cache.forEach(function (c) { if (c.seq === msg.seq) c.failed = true; });
        save();
      }
      return;
    }
    var out = msg.direction !== "in";
    var li = (msg.client_id && byClient[msg.client_id]) || (msg.stream_id && byStream[msg.stream_id]);
    if (li) {
      setText(li, msg.text, out);
      if (msg.client_id) setPending(li, null);
      li.classList.remove("botkit-streaming");
      li.removeAttribute("aria-busy");
      if (msg.client_id) { delete byClient[msg.client_id]; dropOutbox(msg.client_id); }
      if (msg.stream_id) delete byStream[msg.stream_id];
    } else {
      var agent = out ? agentName(msg) : null;
      li = bubble(msg.direction, msg.text, out && !agent, agent);
    }
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
    var files = validFiles(msg.attachments);
    showFiles(li, files);
    if (failed) markFailed(li);
    var buttons = out && !failed ? validButtons(msg.buttons) : [];
    if (msg.seq >= state.lastSeq) showButtons(li, buttons);
    remember(msg, buttons, failed, files);
    if (out) typing.hidden = !streamsLive() || typing.hidden;
  }
  function onAck(msg) {
    var li = byClient[msg.client_id];
    dropOutbox(msg.client_id);
    if (!li) return;
    delete byClient[msg.client_id];
    setPending(li, null);
    if (bySeq[msg.seq]) { li.remove(); return; } // already shown via history
    li.dataset.seq = String(msg.seq);
    bySeq[msg.seq] = li;
  }
  function onStream(msg) {
    if (typeof msg.stream_id !== "string") return;
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
    follow();
  }
  function onStreamEnd(msg) {
    var li = byStream[msg.stream_id];
    if (li) { li.remove(); delete byStream[msg.stream_id]; } // its stored copy came another way
    if (!streamsLive()) typing.hidden = true;
  }
  function endStreams() {
    // A socket's streams end with it: the stored reply comes back through history, and
    // the next welcome's snapshot recreates the replies still being generated.
    Object.keys(byStream).forEach(function (id) { byStream[id].remove(); });
    byStream = {};
    typing.hidden = true;
  }
  function dropOutbox(clientId) {
    state.outbox = state.outbox.filter(function (m) { return m.client_id !== clientId; });
    if (finished.indexOf(clientId) < 0) finished.push(clientId);
    if (finished.length > 500) finished.splice(0, finished.length - 500);
    save();
  }
  function failItem(clientId, why) {
    var li = byClient[clientId];
    if (li) markFailed(li, why);
    delete byClient[clientId];
    dropOutbox(clientId);
  }

  // ---- connection -------------------------------------------------------------------
  var ws = null, attempt = 0, retryTimer = null, stableTimer = null, idle = false;
  var maxBytes = 16384;
  var maxFileBytes = 0;     // from the welcome; 0 until then, or when files are off
  var sendingFile = false;
  var refused = false;      // the server refused the page's identity: wait for a new one
  var connText = "";        // the connection's status, shown again after a passing notice
  var statusTimer = null;   // says "Connecting..." once a connect has taken
  var CONNECTING_SAY_MS = 1000;
  function setStatus(text) { connText = text; status.textContent = text; }
  function notice(text) { status.textContent = text; }
  function pageUserToken() {
    // A site JWT lives minutes: a page that keeps the chat open longer puts a fresh one
    // in data-user-token, and every connect presents the newest one of the same user.
    var t = script.getAttribute("data-user-token");
    if (t && t !== cfg.userToken && jwtSubject(t) === subject) cfg.userToken = t;
    return cfg.userToken;
  }
  function hello(sock) {
    var h = { type: "hello", site_key: cfg.siteKey, after_seq: state.lastSeq, lang: cfg.lang };
    // The page's identity goes with every hello: the server takes a signed-in user's
    // session token only next to it (alone it means a signed-out page).
    if (cfg.userId) { h.user_id = cfg.userId; h.user_hash = cfg.userHash; }
    else if (cfg.userToken) h.user_token = pageUserToken();
    if (state.token && fitsSlot(state.who || whoOf(state.token))) {
      h.token = state.token;
      sock.sentToken = true;
    }
    sock.afterSeq = h.after_seq;
    return h;
  }
  function connect() {
    if (ws || !cfg.siteKey || refused) return;
    clearTimeout(retryTimer);
    idle = false;
    var sock = new WebSocket(WS_URL);
    ws = sock;
    // Said only when it lasts: most connections are up within milliseconds, every time
    // the panel opens, and a status change is read out by screen readers. A status
    // already shown (offline, idle) stays until then.
    clearTimeout(statusTimer);
    statusTimer = setTimeout(function () {
      if (ws === sock && !sock.welcomed) setStatus("Connecting\u2026");
    }, CONNECTING_SAY_MS);
    sock.sent = [];
    sock.onopen = function () { sock.send(JSON.stringify(hello(sock))); };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object" || ws !== sock) return;
      switch (msg.type) {
        case "welcome": onWelcome(sock, msg); break;
        case "message": onStored(msg); break;
        case "ack": onAck(msg); break;
        case "stream": onStream(msg); break;
        case "delta": onDelta(msg); break;
        case "stream_end": onStreamEnd(msg); break;
        case "error": onError(sock, msg); break;
        default: break;
      }
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      onClose(sock, ev.code);
    };
  }
  function restart(sock) {
    // Drop this socket and connect again at once (the hello is built afresh).
    sock.onclose = null;
    sock.onmessage = null;
    if (ws === sock) ws = null;
    clearTimeout(stableTimer);
    endStreams();
    try { sock.close(1000); } catch (e) { /* already closing */ }
    connect();
  }
  function onClose(sock, code) {
    clearTimeout(stableTimer);
    endStreams();
    if (code === 4401 && sock.sentToken) {
      if (signedIn) { // maybe only the session token was refused: ask without it
        state.token = null;
        save();
      } else { // our stored session is no longer valid: start a new conversation
        resetConversation();
      }
      connect();
      return;
    }
    if (code === 4401) { // the page's own identity was refused: nothing to retry with
      refused = true;
      setStatus(cfg.userToken && sock.refusal === "expired_token"
        ? "Your sign-in has expired. Reload the page to keep chatting."
        : "Chat is not available on this page.");
      outboxWaits();
      return;
    }
    if (code === 4408 && sock.welcomed) { // idle: nobody sent anything for a while
      if (!panel.hidden && document.visibilityState === "visible") { connect(); return; }
      idle = true;
      setStatus("Disconnected while idle. Type a message to reconnect.");
      outboxWaits();
      return;
    }
    if (code === 1009) { // a message was too big for the server: it must not be resent
      var sent = state.outbox.filter(function (m) { return sock.sent.indexOf(m.client_id) >= 0; });
      var item = sent.length ? sent.reduce(function (a, b) { return frameBytes(b) >= frameBytes(a) ? b : a; })
        : state.outbox[state.outbox.length - 1];
      if (item) failItem(item.client_id, "Too long: not sent");
    }
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    setStatus("Offline. Reconnecting\u2026");
    outboxWaits();
    retryTimer = setTimeout(connect, delay);
  }
  function onWelcome(sock, msg) {
    sock.welcomed = true;
    // The backoff is reset only by a socket that stays up; one closed right after its
    // welcome (e.g. refused frames) must not reconnect at full speed for ever.
    clearTimeout(stableTimer);
    stableTimer = setTimeout(function () { if (ws === sock) attempt = 0; }, STABLE_MS);
    if (Number.isInteger(msg.max_message_bytes) && msg.max_message_bytes > 0) maxBytes = msg.max_message_bytes;
    maxFileBytes = Number.isInteger(msg.max_file_bytes) && msg.max_file_bytes > 0 ? msg.max_file_bytes : 0;
    attachBtn.hidden = !maxFileBytes;
    var who = whoOf(msg.token);
    var kind = msg.identity === "user" ? "u" : msg.identity === "session" ? "s" : null;
    // A different conversation than the cached one (another identity or subject), or a
    // server whose conversation is shorter than our cache (a restored database): the
    // cache is not this conversation's, so it goes before anything is shown.
    var stale = (state.who !== null && who !== null && who !== state.who) ||
      (state.who !== null && kind !== null && state.who.charAt(0) !== kind) ||
      (Number.isInteger(msg.last_seq) && msg.last_seq < state.lastSeq);
    // Only a token of this slot's identity is kept (an unreadable one by its kind).
    if (typeof msg.token === "string" && (who !== null ? fitsSlot(who) : (kind === "u") === signedIn)) {
      state.token = msg.token;
      state.who = who;
    }
    if (stale) {
      resetCache();
      save();
      var from = Number.isInteger(msg.after_seq) ? msg.after_seq : sock.afterSeq;
      if (from > 0) { restart(sock); return; } // ask again from the start
    }
    save();
    setStatus("");
    // Resend what is unacknowledged (the server answers once); what can never fit fails.
    state.outbox.slice().forEach(function (item) {
      if (frameBytes(item) > maxBytes) failItem(item.client_id, "Too long: not sent");
      else transmit(item);
    });
  }
  function onError(sock, msg) {
    if (!sock.welcomed) { sock.refusal = msg.code; return; } // the close code follows
    var li = msg.client_id && byClient[msg.client_id];
    var retry = msg.code === "rate_limited" || msg.code === "rejected" || msg.code === "unavailable";
    if (retry && msg.client_id) {
      if (li) setPending(li, "retrying");
      notice(msg.code === "rate_limited"
        ? "You are sending messages quickly; retrying shortly\u2026"
        : "Message not delivered yet; retrying shortly\u2026");
      var wait = Math.min(60, Math.max(0.2, Number(msg.retry_after) || 1)) * 1000;
      setTimeout(function () {
        var item = state.outbox.filter(function (m) { return m.client_id === msg.client_id; })[0];
        if (item) transmit(item);
        status.textContent = connText;
      }, wait);
      return;
    }
    if (li) failItem(msg.client_id);
    notice(typeof msg.message === "string" ? msg.message.slice(0, 300) : "Error");
  }
  function resetCache() {
    state.lastSeq = 0; state.cache = [];
    bySeq = {};
    endStreams();
    Array.prototype.slice.call(log.querySelectorAll(".botkit-msg:not(.botkit-pending)"))
      .forEach(function (n) { n.remove(); });
  }
  function resetConversation() {
    state.token = null; state.who = null;
    resetCache();
    save();
  }
  function frameBytes(item) {
    // What the server measures: the whole JSON frame, after escaping, in UTF-8.
    return encoder.encode(JSON.stringify({ type: "message", client_id: item.client_id, text: item.text })).length;
  }
  function transmit(item) {
    // Before the welcome nothing goes out: the welcome resends the whole outbox.
    var li = byClient[item.client_id];
    if (ws && ws.welcomed && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "message", client_id: item.client_id, text: item.text }));
      if (ws.sent.indexOf(item.client_id) < 0) ws.sent.push(item.client_id);
    }
    // Connecting counts as sending: it goes with the welcome, most often at once.
    if (li) setPending(li, ws ? "sending" : "waiting");
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  var TOO_LONG = "This message is too long. Please shorten it.";
  function queue(text) {
    var item = { client_id: newId(), text: text };
    if (frameBytes(item) > maxBytes) { notice(TOO_LONG); return false; }
    status.textContent = connText; // a passing notice (too long) is over
    clearButtons();
    byClient[item.client_id] = bubble("in", text, false);
    follow(true);
    state.outbox.push(item);
    save();
    if (!ws) connect();
    transmit(item);
    return true;
  }
  function send() {
    var text = input.value.trim();
    if (text && queue(text)) input.value = "";
  }
  // A file is posted over HTTP (a socket frame holds text only); the server stores it as
  // a message of its own, which comes back through the socket like any other.
  var FILE_REFUSED = {
    no_agent: "Files go to a person: ask for one in the chat first.",
    too_large: "This file is too big.",
    unsupported_file: "Only pictures (JPEG, PNG, GIF, WebP) and PDFs can be sent.",
    rate_limited: "You are sending files quickly; please wait a moment.",
    too_many_uploads: "Other files are still being sent; please wait a moment.",
    busy: "The chat is busy; please try again in a moment.",
    upload_timeout: "The file took too long to send; please try again.",
    // Not retried: the same link would trickle it again.
    upload_too_slow: "The connection is too slow to send this file; try a smaller one.",
    file_limit: "This chat cannot take more files.",
  };
  // Refusals that pass: the same file is sent again, under the same client_id, so a file
  // the server kept while its answer was lost is answered as kept, not stored twice.
  var FILE_RETRY = { busy: 1, unavailable: 1, upload_timeout: 1, too_many_uploads: 1, rate_limited: 1 };
  var FILE_TRIES = 5;
  function sendFile(file) {
    if (file.size > maxFileBytes) {
      notice("This file is too big (at most " + sizeText(maxFileBytes) + ").");
      return;
    }
    if (!state.token || sendingFile) return;
    sendingFile = true;
    attachBtn.disabled = true;
    var clientId = newId(), tries = 0;
    function done(text) {
      notice(text);
      sendingFile = false;
      attachBtn.disabled = false;
    }
    function again(seconds, why) {
      if (tries >= FILE_TRIES) { done(why); return; }
      var wait = Math.min(30, Math.max(seconds || 0, Math.pow(2, tries - 1)));
      notice("The file is not sent yet; trying again in " + Math.ceil(wait) + " s\u2026");
      setTimeout(post, wait * 1000);
    }
    function post() {
      tries += 1;
      notice("Sending " + file.name + "\u2026");
      var url = new URL("api/files", server);
      url.searchParams.set("client_id", clientId);
      url.searchParams.set("name", file.name.slice(0, 200));
      fetch(url.href, {
        method: "POST",
        headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/octet-stream" },
        body: file,
      }).then(function (res) {
        if (res.ok) { done(connText); return; }
        var after = Number(res.headers.get("Retry-After")) || 0;
        return res.json().then(function (body) { return body || {}; }, function () { return {}; })
          .then(function (body) {
            var why = FILE_REFUSED[body.error] ||
              (typeof body.message === "string" ? body.message.slice(0, 200) : "The file was not sent.");
            if (FILE_RETRY[body.error] || res.status >= 500) again(Number(body.retry_after) || after, why);
            else done(why);
          });
      }, function () {
        again(0, "The file was not sent: no connection.");
      });
    }
    post();
  }

  // ---- interaction ------------------------------------------------------------------
  function setOpen(open, focus) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + cfg.title);
    state.open = open;
    save();
    if (open) { connect(); follow(true); } // (a hidden list cannot scroll)
    if (open && focus !== false) input.focus();
    setModal();
  }
  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  closeBtn.addEventListener("click", function () { setOpen(false); launcher.focus(); });
  root.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && !ev.isComposing && !panel.hidden) { setOpen(false); launcher.focus(); }
    else if (ev.key === "Tab") keepTabInside(ev);
  });

  // ---- full screen: a modal dialog ---------------------------------------------------
  // At phone width (widget.css: max-width 480px) the open panel covers the page, so it
  // is a modal dialog while it does: aria-modal, the page's own content inert (only
  // what was not inert already; given back when the panel closes or floats again), the
  // launcher under it inert, and Tab going round inside the panel. The floating panel
  // of a wider screen stays a non-modal dialog beside the page.
  var phone = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;
  var madeInert = null; // the page's elements this widget made inert, while modal
  var NOT_SHOWN = /^(HEAD|SCRIPT|STYLE|LINK|META|TEMPLATE|NOSCRIPT)$/;
  var TABBABLE = "button, [href], textarea, input, select, [tabindex]";
  function fullScreen() { return Boolean(phone && phone.matches); }
  function inertSiblings(node) {
    Array.prototype.forEach.call(node.parentElement.children, function (other) {
      if (other === node || other.hasAttribute("inert") || NOT_SHOWN.test(other.tagName)) return;
      other.setAttribute("inert", "");
      madeInert.push(other);
    });
  }
  function setModal() {
    var modal = !panel.hidden && fullScreen();
    if (modal !== (madeInert !== null)) {
      if (modal) {
        madeInert = [];
        for (var node = host; node.parentElement && node !== document.body; node = node.parentElement) {
          inertSiblings(node);
        }
        panel.setAttribute("aria-modal", "true");
        launcher.setAttribute("inert", "");
        // (The screen became narrow while the page had the focus.)
        if (!panel.contains(shadow.activeElement)) panel.focus();
      } else {
        madeInert.forEach(function (n) { n.removeAttribute("inert"); });
        madeInert = null;
        panel.removeAttribute("aria-modal");
        launcher.removeAttribute("inert");
      }
    }
    fitViewport();
  }
  function keepTabInside(ev) {
    if (madeInert === null) return;
    var stops = Array.prototype.filter.call(panel.querySelectorAll(TABBABLE), function (n) {
      return !n.disabled && n.tabIndex >= 0 && n.getClientRects().length > 0;
    });
    if (!stops.length) return;
    var at = shadow.activeElement, first = stops[0], last = stops[stops.length - 1];
    if (ev.shiftKey ? (at === first || at === panel) : at === last) {
      ev.preventDefault();
      (ev.shiftKey ? last : first).focus();
    }
  }
  // The full-screen panel takes the visual viewport, the part of the page the visitor
  // sees: the on-screen keyboard covers the bottom of the layout viewport (iOS Safari;
  // Chrome too unless the page's viewport meta says interactive-widget=resizes-content),
  // where the message box is. (Comparing with innerHeight to tell whether a keyboard is
  // up is unreliable on iOS.) Not while the visitor pinch-zooms: then 100dvh (widget.css).
  function fitViewport() {
    var vv = window.visualViewport;
    var fit = madeInert !== null && vv && Math.abs(vv.scale - 1) < 0.01;
    panel.style.top = fit ? vv.offsetTop + "px" : "";
    panel.style.height = fit ? vv.height + "px" : "";
  }
  if (phone) {
    if (phone.addEventListener) phone.addEventListener("change", setModal);
    else phone.addListener(setModal); // Safari before 14
  }
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); send(); input.focus(); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  input.addEventListener("focus", function () { if (idle) connect(); });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = ""; // the same file again is a new choice
    if (file) sendFile(file);
    input.focus();
  });
  document.addEventListener("visibilitychange", function () {
    if (idle && !panel.hidden && document.visibilityState === "visible") connect();
  });
  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });
  if (cfg.userToken && window.MutationObserver) {
    new MutationObserver(function () { // the site refreshed an expired sign-in
      var before = cfg.userToken;
      if (pageUserToken() !== before && refused) { refused = false; connect(); }
    }).observe(script, { attributes: true, attributeFilter: ["data-user-token"] });
  }

  // ---- start ------------------------------------------------------------------------
  forgetOtherUsers();
  load();
  state.cache.forEach(function (m) {
    var agent = m.direction === "out" ? agentName(m) : null;
    var li = bubble(m.direction, m.text, m.direction === "out" && !agent, agent);
    li.dataset.seq = String(m.seq);
    showFiles(li, m.files || []);
    if (m.failed) markFailed(li);
    bySeq[m.seq] = li;
  });
  var newest = state.cache[state.cache.length - 1];
  if (newest && newest.buttons && !state.outbox.length) showButtons(bySeq[newest.seq], newest.buttons);
  state.outbox.forEach(function (m) { // sent on the first welcome (mount() connects)
    var li = bubble("in", m.text, false);
    byClient[m.client_id] = li;
    setPending(li, "sending");
  });
  function mount() {
    shadow.append(css, root);
    document.body.append(host);
    // Reopened as the visitor left it, without taking the focus: a page that just
    // loaded belongs to the page (its skip links, its first heading). The visitor moves
    // in with Tab or a tap. Not on a phone, where it would cover the whole page (a link
    // from the chat opened in a new tab) as a modal the visitor did not open.
    if (state.open && !fullScreen()) setOpen(true, false);
    else if (state.token || state.outbox.length) connect(); // catch up on replies
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
