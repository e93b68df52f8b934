/*
 * botkit agents' inbox: answers hand-offs through the agent API of the same server.
 * No build step, no dependencies. See botkit/handoff/inbox.py for what it is.
 *
 * Safety rules of this file:
 * - text from the server (customers', agents', the bot's) reaches the page only through
 *   textContent and attributes of elements made here; no HTML string is ever parsed;
 * - the token lives in sessionStorage (this tab only) and travels only in the
 *   Authorization header of requests to this origin;
 * - what the agent wrote is cleared only once the server has stored it.
 */
"use strict";

(() => {
  const STORE_KEY = "botkit-inbox";
  const NOTIFY_KEY = "botkit-inbox-notify";
  const QUEUE_EVERY_MS = 3000;
  const OPEN_EVERY_MS = 2000;
  const MAX_BACKOFF_MS = 30000;
  const PAGE = 100;
  const MAX_NAME = 100; // an agent's name, in characters (the API's limit)
  const IMAGES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);
  // Messages read again on every look, so a delivery that failed after they were shown
  // is marked as such.
  const REREAD = 10;
  const STATUS_TEXT = {
    waiting_human: "waiting for an agent",
    with_human: "with an agent",
    bot: "with the bot",
    closed: "closed",
  };

  const $ = (id) => document.getElementById(id);
  // Relative to this page, so an inbox behind a path prefix (/support/inbox/) works.
  const endpoint = (path) => new URL("../v1/" + path, location.href);

  let session = loadSession(); // {token, agent (their own token's name or null), name}
  let current = null; // the open conversation (see openConversation)
  let failures = 0;
  let queueTimer = 0;
  let queueBusy = false;
  let queueAgain = false;
  let sending = false; // an answer is on its way: Send stays off until it is stored
  let releasing = false;
  const pages = { waiting: 1, handled: 1 }; // queue pages shown ("Show more")
  let moreFrom = null; // where "Show more" was pressed: focus goes to what it added
  const customerNames = new Map(); // conversation id -> name, from the queue
  const queueItems = new Map(); // conversation id -> <li>
  // What the last look at the queue saw, to tell the agent what is new: the waiting
  // conversations, and each handled one's last customer words (null before a first look).
  let waitingMark = null; // the newest hand-off's time seen (ms); null before a look
  const seenSeqs = new Map(); // handled conversation id -> the customer's newest seq
  const notes = new Set(); // notifications shown, closed at sign-out
  let clockOffset = 0; // the server's clock minus this browser's (ms): see serverNow
  // Per conversation: the answer being written, and why one could not be sent.
  const drafts = new Map();
  const unsent = new Map();

  class ApiError extends Error {
    constructor(status, body) {
      super((body && typeof body.error === "string" && body.error) || `HTTP ${status}`);
      this.status = status;
      this.kind = body && body.kind;
      this.agent = body && typeof body.agent === "string" ? body.agent : null; // "taken"
    }
  }

  function loadSession() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      return saved && typeof saved.token === "string" && typeof saved.name === "string"
        ? saved
        : null;
    } catch (_) {
      return null;
    }
  }

  // The API's answer to a request, once it is a success; an ApiError otherwise (and a
  // token refused mid-session signs the agent out).
  async function request(method, path, body, token) {
    const headers = { Authorization: "Bearer " + (token || session.token) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(endpoint(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    noteServerTime(response);
    if (!response.ok) {
      const error = new ApiError(response.status, await json(response));
      if (response.status === 401 && !token && session) {
        signOut("Your token is no longer accepted. Sign in again.");
      }
      throw error;
    }
    return response;
  }

  // The times shown as "waiting 5 min" are the server's; the agent's computer clock may
  // be minutes or hours off. Every answer's Date header (this origin's: readable) says
  // the server's time; its whole seconds and the trip are nothing next to minutes.
  function noteServerTime(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) clockOffset = date - Date.now();
  }

  function serverNow() {
    return Date.now() + clockOffset;
  }

  async function call(method, path, body, token) {
    return json(await request(method, path, body, token));
  }

  async function json(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  // -- signing in and out --------------------------------------------------------------

  function showSignIn(message) {
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("token").focus();
  }

  // Why the API would refuse ``name`` as an agent's (botkit/agent_names.py: 1-100
  // characters once spaces are collapsed, none of them a control or format character),
  // or "" when it takes it. Checked here so a name that can never send is not signed in.
  function nameProblem(name) {
    const length = [...name].length; // characters, as the API counts them
    if (length > MAX_NAME) return `Your name has ${length} characters; at most ${MAX_NAME}.`;
    if (/[\p{C}\p{Zl}\p{Zp}]/u.test(name)) {
      return "Your name has an invisible or control character (such as one that turns " +
        "text right to left); customers would not see it as you typed it. Type it again.";
    }
    return "";
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    const name = $("name").value.trim().replace(/\s+/g, " ");
    const error = $("signin-error");
    if (!token) {
      error.textContent = "Give your token.";
      return;
    }
    if (name && nameProblem(name)) {
      $("name-row").hidden = false;
      error.textContent = nameProblem(name);
      $("name").focus();
      return;
    }
    let me;
    try {
      me = await call("GET", "me", undefined, token);
    } catch (e) {
      error.textContent =
        e.status === 401
          ? "That token is not valid."
          : "The server cannot be reached (" + e.message + "). Try again.";
      return;
    }
    if (me.agent === null && !name) {
      $("name-row").hidden = false;
      error.textContent = "This is the team's shared token: add your name.";
      $("name").focus();
      return;
    }
    session = { token, agent: me.agent, name: me.agent === null ? name : me.agent };
    sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
    $("token").value = "";
    error.textContent = "";
    start();
  }

  function signOut(message) {
    session = null;
    if (current) {
      clearTimeout(current.timer);
      current.blobs.forEach((url) => URL.revokeObjectURL(url));
    }
    current = null;
    sessionStorage.removeItem(STORE_KEY);
    clearTimeout(queueTimer);
    for (const id of ["waiting", "handled", "messages"]) $(id).replaceChildren();
    // Nothing of this agent's work is left for whoever signs in next on this tab.
    for (const map of [queueItems, customerNames, drafts, unsent]) map.clear();
    pages.waiting = pages.handled = 1;
    waitingMark = null;
    seenSeqs.clear();
    for (const note of notes) note.close();
    notes.clear();
    $("text").value = "";
    $("send-error").textContent = "";
    $("alert").textContent = "";
    history.replaceState(null, "", location.pathname + location.search);
    $("open").hidden = true;
    $("nothing-open").hidden = false;
    document.title = "Inbox · botkit";
    showSignIn(message);
  }

  function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("who").textContent = session.name;
    showNotifyButton();
    pollQueue();
    openFromHash();
  }

  // -- connection state ----------------------------------------------------------------

  function connected() {
    failures = 0;
    $("connection").textContent = "";
    $("connection").classList.remove("lost");
  }

  function trouble(error) {
    if (error instanceof ApiError && error.status !== 503) return false;
    failures += 1;
    $("connection").textContent =
      error instanceof ApiError
        ? "The server has a problem (" + error.message + "); retrying…"
        : "Connection lost; retrying…";
    $("connection").classList.add("lost");
    return true;
  }

  function later(everyMs) {
    return Math.min(everyMs * 2 ** failures, MAX_BACKOFF_MS);
  }

  // -- the queue -----------------------------------------------------------------------

  async function pollQueue() {
    const mine = session;
    if (!mine) return;
    if (queueBusy) {
      queueAgain = true; // one more read once this one is done: one timer, ever
      return;
    }
    queueBusy = true;
    clearTimeout(queueTimer);
    try {
      const [waiting, handled, newest] = await Promise.all([
        readList("waiting_human", "oldest", pages.waiting),
        readList("with_human", "newest", pages.handled),
        // The newest hand-offs, which a long queue's first pages do not reach.
        notifying() ? readList("waiting_human", "newest", 1) : null,
      ]);
      if (session === mine) {
        connected();
        showQueue("waiting", waiting, (c) => "waiting " + elapsed(c.status_since));
        showQueue("handled", handled, (c) => (c.agent ? "with " + isolated(c.agent) + ", " : "") +
          "last active " + elapsed(c.updated_at) + " ago");
        const count = waiting.conversations.length;
        const more = waiting.next_cursor ? "+" : "";
        document.title = (count ? `(${count}${more}) ` : "") + "Inbox · botkit";
        if (current) showHead(current.conversation);
        tellWhatIsNew(newest ? newest.conversations : waiting.conversations,
          handled.conversations);
      }
    } catch (e) {
      if (session === mine && !trouble(e)) {
        $("connection").textContent = "The queue cannot be read: " + e.message;
      }
    } finally {
      queueBusy = false;
    }
    if (queueAgain) {
      queueAgain = false;
      pollQueue(); // for whoever is signed in now
    } else if (session === mine) {
      queueTimer = setTimeout(pollQueue, later(QUEUE_EVERY_MS));
    }
  }

  // -- notifications -------------------------------------------------------------------

  function notifying() {
    return "Notification" in window && Notification.permission === "granted" &&
      localStorage.getItem(NOTIFY_KEY) === "on";
  }

  function showNotifyButton() {
    const button = $("notify");
    button.hidden = !("Notification" in window) || Notification.permission === "denied";
    button.setAttribute("aria-pressed", String(notifying()));
    button.textContent = notifying() ? "Notifying" : "Notify me";
  }

  async function toggleNotify() {
    if (notifying()) {
      localStorage.removeItem(NOTIFY_KEY);
    } else if ((await Notification.requestPermission()) === "granted") {
      localStorage.setItem(NOTIFY_KEY, "on"); // a preference of this browser, no data
    }
    showNotifyButton();
  }

  // While the inbox is in the background: a customer who starts waiting (a hand-off
  // newer than any seen before), or who writes again in a conversation an agent has
  // (their newest message's seq went up). The first look only learns what is there.
  function tellWhatIsNew(waiting, handled) {
    const news = [];
    const mark = waitingMark;
    for (const c of waiting) {
      const since = Date.parse(c.status_since);
      if (mark !== null && since > mark) news.push([c, "is waiting for an agent"]);
      waitingMark = Math.max(waitingMark === null ? since : waitingMark, since);
    }
    if (waitingMark === null) waitingMark = 0; // nobody waiting: any hand-off is news
    for (const c of handled) {
      const before = seenSeqs.get(c.id);
      if (before !== undefined && c.last_customer_seq !== null && c.last_customer_seq > before) {
        news.push([c, "wrote"]);
      }
      seenSeqs.set(c.id, c.last_customer_seq === null ? 0 : c.last_customer_seq);
    }
    if (!document.hidden || !notifying()) return;
    const who = session;
    for (const [c, what] of news) {
      const name = isolated(c.customer_name || anonymous(c.id));
      let note;
      try {
        note = new Notification(`${name} ${what}`, {
          body: c.last_customer_text || "",
          tag: "botkit-inbox-" + c.id, // one per conversation, replaced, not piled up
        });
      } catch (_) {
        // Some browsers (Chrome on Android) allow notifications only from a service
        // worker: say so, rather than seem to notify.
        localStorage.removeItem(NOTIFY_KEY);
        showNotifyButton();
        $("alert").textContent = "This browser cannot show notifications from the inbox.";
        return;
      }
      notes.add(note);
      note.onclose = () => notes.delete(note);
      note.onclick = () => {
        note.close();
        if (session !== who) return; // another agent signed in on this tab since
        window.focus();
        openConversation(c.id);
      };
    }
  }

  // Up to ``count`` pages of one list, as one page (next_cursor: more beyond them).
  async function readList(status, order, count) {
    let cursor = null;
    const conversations = [];
    for (let page = 0; page < count; page += 1) {
      const query = `handoffs?status=${status}&order=${order}&limit=${PAGE}`;
      const read = await call("GET", query + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      conversations.push(...read.conversations);
      cursor = read.next_cursor;
      if (!cursor) break;
    }
    return { conversations, next_cursor: cursor };
  }

  function showQueue(name, page, when) {
    const list = $(name);
    const conversations = page.conversations;
    $(name + "-count").textContent =
      conversations.length + (page.next_cursor ? "+" : "");
    $(name + "-empty").hidden = conversations.length > 0;
    $(name + "-more").hidden = !page.next_cursor;
    // Moving the focused button would drop keyboard focus to the page: put it back.
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const keep = new Set(conversations.map((c) => c.id));
    for (const item of [...list.children]) {
      if (!keep.has(Number(item.dataset.id))) {
        item.remove();
        queueItems.delete(Number(item.dataset.id));
      }
    }
    conversations.forEach((c, index) => {
      customerNames.set(c.id, c.customer_name);
      let item = queueItems.get(c.id);
      if (!item) {
        item = queueItem(c.id);
        queueItems.set(c.id, item);
      }
      const button = item.firstChild;
      button.querySelector(".name").textContent = c.customer_name || anonymous(c.id);
      button.querySelector(".sub").textContent = [c.channel, c.language || "language unknown",
        when(c)].join(" · ");
      button.querySelector(".preview").textContent = c.last_customer_text || "";
      if (current && current.id === c.id) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
    });
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }
    if (moreFrom && moreFrom.name === name) {
      const added = list.children[moreFrom.index];
      if (added) {
        // Only from where "Show more" left it: never out of the answer box.
        const from = document.activeElement;
        if (from === $(name + "-more") || from === document.body || from === null) {
          added.firstChild.focus();
        }
        moreFrom = null;
      } else if (!page.next_cursor) {
        moreFrom = null;
      }
    }
  }

  function queueItem(id) {
    const item = document.createElement("li");
    item.dataset.id = String(id);
    const button = document.createElement("button");
    button.type = "button";
    for (const part of ["name", "sub", "preview"]) {
      const span = document.createElement("span");
      span.className = part;
      span.dir = "auto"; // isolated from what surrounds it, whichever way it is written
      button.append(span);
    }
    button.addEventListener("click", () => openConversation(id));
    item.append(button);
    return item;
  }

  // -- the open conversation -----------------------------------------------------------

  function openFromHash() {
    const match = /^#c=(\d{1,19})$/.exec(location.hash);
    if (match) openConversation(Number(match[1]));
  }

  function openConversation(id) {
    if (!session || (current && current.id === id)) return;
    if (current) {
      clearTimeout(current.timer);
      keepDraft(current.id, $("text").value);
      current.blobs.forEach((url) => URL.revokeObjectURL(url));
    }
    current = {
      id,
      lastSeq: 0,
      conversation: null,
      items: new Map(), // seq -> <li>
      busy: false,
      again: false,
      gone: false, // erased meanwhile
      timer: 0,
      blobs: [], // object URLs of the files opened
      loading: true, // its first read is not done yet
    };
    history.replaceState(null, "", "#c=" + id);
    $("messages").replaceChildren();
    // The transcript is read out as it grows, not all at once when it opens.
    $("messages").setAttribute("aria-live", "off");
    $("messages").setAttribute("aria-busy", "true");
    $("notice").hidden = true;
    $("text").value = drafts.get(id) || "";
    $("send-error").textContent = unsent.get(id) || "";
    unsent.delete(id);
    showUnsent();
    $("as-written").checked = false;
    $("title").textContent = customerNames.get(id) || anonymous(id);
    $("meta").textContent = "";
    $("nothing-open").hidden = true;
    $("open").hidden = false;
    for (const [otherId, item] of queueItems) {
      if (otherId === id) item.firstChild.setAttribute("aria-current", "true");
      else item.firstChild.removeAttribute("aria-current");
    }
    pollOpen(current);
    $("text").focus();
  }

  function keepDraft(id, text) {
    if (text) drafts.set(id, text);
    else drafts.delete(id);
  }

  async function pollOpen(mine) {
    if (mine !== current) return;
    if (mine.busy) {
      mine.again = true; // one more read once this one is done
      return;
    }
    mine.busy = true;
    clearTimeout(mine.timer);
    try {
      for (;;) {
        const after = Math.max(0, mine.lastSeq - REREAD);
        const page = await call(
          "GET", `conversations/${mine.id}/messages?after_seq=${after}&limit=${PAGE}`);
        if (mine !== current) return;
        connected();
        mine.conversation = page.conversation;
        showHead(page.conversation);
        showMessages(mine, page.messages);
        if (page.messages.length < PAGE) break;
      }
      if (mine.loading) {
        mine.loading = false;
        // A task later, so what the first load added is not announced as new.
        setTimeout(() => {
          $("messages").setAttribute("aria-live", "polite");
          $("messages").removeAttribute("aria-busy");
        }, 0);
      }
    } catch (e) {
      if (mine !== current) return;
      if (e instanceof ApiError && e.status === 404) {
        mine.gone = true;
        showNotice("This conversation no longer exists (its data was erased).");
        setComposing(false);
        $("release").disabled = true;
        mine.busy = false;
        return; // nothing more to read
      }
      trouble(e);
    } finally {
      mine.busy = false;
    }
    if (mine !== current) return;
    if (mine.again) {
      mine.again = false;
      pollOpen(mine);
    } else {
      mine.timer = setTimeout(() => pollOpen(mine), later(OPEN_EVERY_MS));
    }
  }

  function showHead(conversation) {
    if (!conversation || !current || current.gone || conversation.id !== current.id) return;
    $("title").textContent = customerNames.get(conversation.id) || anonymous(conversation.id);
    const since = "since " + clock(conversation.status_since);
    $("meta").textContent = [
      conversation.channel,
      conversation.key,
      conversation.language ? "writes " + conversation.language : null,
      (conversation.agent ? "with " + isolated(conversation.agent)
        : STATUS_TEXT[conversation.status] || conversation.status) + " " + since,
    ].filter(Boolean).join(" · ");
    const human = conversation.status === "waiting_human" || conversation.status === "with_human";
    $("release").disabled = !human || releasing;
    // Another agent's customer goes back to the bot only on purpose, as for writing.
    $("release").textContent = human && takenByOther(conversation)
      ? "Take over and give back to the bot" : "Give back to the bot";
    if (conversation.status === "closed") {
      showNotice("This conversation is closed.");
      setComposing(false);
    } else if (conversation.status === "bot") {
      showNotice("The bot is answering this conversation. Sending takes it over.");
      setComposing(true, "Take over and send");
    } else if (takenByOther(conversation)) {
      showNotice(isolated(conversation.agent) + " has this conversation. Sending takes it over.");
      setComposing(true, "Take over and send");
    } else {
      $("notice").hidden = true;
      setComposing(true, "Send");
    }
  }

  // Another agent has it: whoever signed in here, with their own token or with the
  // shared one and their name (session.name either way), takes it over explicitly. The
  // API refuses only an agent's own token; the page asks the same of both.
  function takenByOther(conversation) {
    return session !== null && !!conversation.agent &&
      conversation.agent.toLowerCase() !== session.name.toLowerCase();
  }

  function setComposing(enabled, label) {
    $("text").disabled = !enabled;
    $("send").disabled = !enabled || sending;
    if (label) $("send").textContent = label;
  }

  function showNotice(text) {
    $("notice").textContent = text;
    $("notice").hidden = false;
  }

  function showMessages(mine, messages) {
    const list = $("messages");
    const atBottom =
      mine.lastSeq === 0 || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    for (const message of messages) {
      const shown = mine.items.get(message.seq);
      if (shown) {
        // Read again: only its delivery can have changed (stored as sent, then refused).
        if (message.status === "failed" && !shown.querySelector(".failed")) {
          shown.append(paragraph("failed", "Not delivered"));
        }
        continue;
      }
      mine.lastSeq = Math.max(mine.lastSeq, message.seq);
      const item = messageItem(message);
      mine.items.set(message.seq, item);
      list.append(item);
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function messageItem(message) {
    const customer = message.direction === "in";
    const agent = !customer && message.agent !== null;
    const item = document.createElement("li");
    item.className = "message " + (customer ? "customer" : agent ? "agent" : "bot");
    item.dataset.seq = String(message.seq);

    const head = document.createElement("p");
    head.className = "author";
    // Names are isolated: one written right to left (or with an override in it) must
    // not run into the time after it.
    const author = document.createElement("bdi");
    author.className = "name";
    author.textContent = customer
      ? customerNames.get(current.id) || "Customer"
      : agent ? message.agent || "Agent" : "Bot";
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    time.textContent = clock(message.created_at);
    head.append(author, " ", time);
    item.append(head);

    // Agents read the working language: what the customer wrote, translated, and what
    // an agent or the bot wrote before it was translated for the customer.
    const shown = message.working_text === null ? message.text : message.working_text;
    if (shown) item.append(paragraph("text", shown));
    if (message.working_text !== null) {
      const label = customer
        ? `Original (${message.language || "?"}): `
        : `Sent in ${message.language || "?"}: `;
      item.append(paragraph("original", label + message.text));
    }
    if (message.attachments.length) item.append(attachments(message));
    if (message.status === "failed") item.append(paragraph("failed", "Not delivered"));
    return item;
  }

  function attachments(message) {
    const list = document.createElement("ul");
    list.className = "files";
    message.attachments.forEach((file, index) => {
      const entry = document.createElement("li");
      const label = "📎 " + (file.name || file.kind) + (file.name ? ` (${file.kind})` : "");
      let link = null;
      try {
        const target = file.url ? new URL(file.url) : null;
        if (target && (target.protocol === "https:" || target.protocol === "http:")) {
          link = document.createElement("a");
          link.href = target.href;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
        }
      } catch (_) {
        link = null; // not a URL: shown as a name only
      }
      if (link) {
        link.textContent = label;
        entry.append(link);
      } else {
        entry.append(label);
      }
      if (file.fetchable) {
        const open = document.createElement("button");
        open.type = "button";
        open.className = "open-file";
        const image = IMAGES.has(file.mime_type);
        open.textContent = image ? "Show" : "Download";
        open.addEventListener("click", () => openFile(message.seq, index, file, entry, open));
        entry.append(" ", open);
      }
      list.append(entry);
    });
    return list;
  }

  // Fetched with the agent's token (a link could not carry it), shown from memory.
  async function openFile(seq, index, file, entry, button) {
    const mine = current;
    button.disabled = true;
    try {
      const response = await request(
        "GET", `conversations/${mine.id}/messages/${seq}/attachments/${index}`);
      const blob = await response.blob();
      if (mine !== current) return;
      fileProblem(entry, "");
      const name = file.name || `${file.kind}-${seq}-${index}`;
      if (IMAGES.has(file.mime_type)) showPicture(mine, entry, button, blob, name);
      else offerDownload(mine, entry, button, blob, name, true);
    } catch (e) {
      if (mine !== current) return;
      button.disabled = false;
      fileProblem(entry, "Could not open it: " + e.message);
    }
  }

  function showPicture(mine, entry, button, blob, name) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const picture = document.createElement("img");
    picture.alt = name;
    picture.className = "picture";
    picture.tabIndex = -1;
    picture.addEventListener("load", () => {
      const hadFocus = keepsFocus(button);
      button.remove();
      if (atBottom) list.scrollTop = list.scrollHeight;
      else picture.scrollIntoView({ block: "nearest" });
      if (hadFocus) picture.focus({ preventScroll: true });
    }, { once: true });
    picture.addEventListener("error", () => {
      // Its type said picture; its content is something else: the file itself, then.
      picture.remove();
      fileProblem(entry, "This file is not a picture the page can show.");
      offerDownload(mine, entry, button, blob, name, false);
    }, { once: true });
    picture.src = objectUrl(mine, blob);
    entry.append(picture);
  }

  function offerDownload(mine, entry, button, blob, name, start) {
    const save = document.createElement("a");
    save.href = objectUrl(mine, new Blob([blob], { type: "application/octet-stream" }));
    save.download = name;
    save.textContent = "Save " + name;
    entry.append(" ", save);
    const hadFocus = keepsFocus(button);
    button.remove();
    if (hadFocus) save.focus();
    if (start) save.click();
  }

  // Whether focus is still where the agent asked for the file (or fell to the page when
  // the button went): then it follows the file; never out of the answer box.
  function keepsFocus(button) {
    const at = document.activeElement;
    return at === button || at === document.body || at === null;
  }

  function objectUrl(mine, blob) {
    const url = URL.createObjectURL(blob);
    mine.blobs.push(url);
    return url;
  }

  // One problem line per file, replaced or removed as it changes.
  function fileProblem(entry, text) {
    let line = entry.querySelector(".file-error");
    if (!text) {
      if (line) line.remove();
      return;
    }
    if (!line) {
      line = paragraph("file-error", "");
      entry.append(line);
    }
    line.textContent = text;
  }

  function paragraph(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  }

  // -- answering -----------------------------------------------------------------------

  async function send(event) {
    event.preventDefault();
    const mine = current;
    const box = $("text");
    const error = $("send-error");
    if (!mine || sending || $("send").disabled) return;
    if (!box.value.trim()) {
      error.textContent = "Write an answer first.";
      return;
    }
    const body = { text: box.value, translate: !$("as-written").checked };
    if (session.agent === null) body.agent = session.name;
    if (mine.conversation && (mine.conversation.status === "bot" ||
      takenByOther(mine.conversation))) body.take_over = true;
    error.textContent = "";
    sending = true;
    $("send").disabled = true;
    const who = session;
    // The agent may switch away and back while it is on its way: it is this
    // conversation's answer, whichever view of it is open.
    const open = () => current !== null && current.id === mine.id;
    try {
      await call("POST", `conversations/${mine.id}/messages`, body);
      // Stored: take it out wherever it is now, in the box or kept as that draft; what
      // the agent typed meanwhile stays.
      if (open()) box.value = unsentPart(box.value, body.text);
      if (drafts.has(mine.id)) keepDraft(mine.id, unsentPart(drafts.get(mine.id), body.text));
    } catch (e) {
      if (session !== who) return; // signed out meanwhile: not the next agent's business
      if (open()) {
        error.textContent = refusal(e);
      } else {
        // The agent moved on: say so now, and again when they come back to it.
        unsent.set(mine.id, refusal(e));
        showUnsent();
      }
    } finally {
      sending = false;
      if (current) $("send").disabled = $("text").disabled;
    }
    if (session !== who) return;
    if (current) pollOpen(current);
    pollQueue();
  }

  function unsentPart(text, sent) {
    return text.startsWith(sent) ? text.slice(sent.length).replace(/^\s+/, "") : text;
  }

  function showUnsent() {
    const alert = $("alert");
    alert.replaceChildren();
    if (!unsent.size) return;
    alert.append("Not sent: your answer to ");
    [...unsent.keys()].forEach((id, index) => {
      const name = document.createElement("bdi"); // isolated from the text around it
      name.textContent = customerNames.get(id) || anonymous(id);
      alert.append(...(index ? [", ", name] : [name]));
    });
    alert.append(". Open the conversation to see why.");
  }

  function refusal(e) {
    if (!(e instanceof ApiError)) return "Not sent: the server cannot be reached. Your answer is kept.";
    if (e.kind === "with_bot") {
      return "Not sent: the conversation went back to the bot. Send again to take it over.";
    }
    if (e.kind === "taken") {
      return `Not sent: ${e.agent || "another agent"} has taken the conversation. ` +
        "Send again to take it over.";
    }
    if (e.kind === "untranslated") {
      return "Not sent: " + e.message + " Tick “Send as written” to send it untranslated.";
    }
    return "Not sent: " + e.message;
  }

  async function release() {
    const mine = current;
    if (!mine || releasing) return;
    releasing = true;
    $("release").disabled = true;
    const who = session;
    const body = mine.conversation && takenByOther(mine.conversation)
      ? { take_over: true } : undefined;
    try {
      await call("POST", `conversations/${mine.id}/release`, body);
    } catch (e) {
      // Not in the notice, which each read of the conversation rewrites.
      if (mine === current) {
        $("send-error").textContent = e instanceof ApiError && e.kind === "taken"
          ? `Not given back: ${e.agent || "another agent"} has this conversation. ` +
            "Press again to take it over and give it back."
          : "Not given back: " + e.message;
      }
    } finally {
      releasing = false;
    }
    if (session !== who) return;
    if (current) pollOpen(current);
    pollQueue();
  }

  // -- formatting ----------------------------------------------------------------------

  // A name in running text where no element can isolate it (a notification's title, a
  // notice): between first-strong isolate and pop directional isolate, so it cannot turn
  // the text around it. Only a name that could (a right-to-left script, a direction
  // control) gets them; the rest read as they are, with nothing invisible added.
  const TURNS = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]/u;

  function isolated(name) {
    return TURNS.test(name) ? "\u2068" + name + "\u2069" : name;
  }

  function anonymous(id) {
    return "Customer #" + id; // a channel that gives no name (a web visitor)
  }

  function clock(iso) {
    const when = new Date(iso);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return when.toDateString() === new Date(serverNow()).toDateString()
      ? time
      : when.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + time;
  }

  function elapsed(iso) {
    const minutes = Math.floor(Math.max(0, serverNow() - Date.parse(iso)) / 60000);
    if (minutes < 1) return "under a minute";
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ${minutes % 60} min`;
    return Math.floor(hours / 24) + " d";
  }

  // -- wiring --------------------------------------------------------------------------

  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut());
  $("notify").addEventListener("click", toggleNotify);
  $("compose").addEventListener("submit", send);
  $("release").addEventListener("click", release);
  $("text").addEventListener("keydown", (event) => {
    // keyCode 229: Safari's Enter that confirms an input method's word (Japanese,
    // Chinese, Korean), which it reports after the composition has ended.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      $("compose").requestSubmit();
    }
  });
  window.addEventListener("hashchange", openFromHash);
  for (const name of ["waiting", "handled"]) {
    $(name + "-more").addEventListener("click", () => {
      pages[name] += 1;
      moreFrom = { name, index: $(name).children.length };
      pollQueue();
    });
  }

  if (session) start();
  else showSignIn();
})();
