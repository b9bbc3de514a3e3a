// The orchestrator's in-app client: no dependencies, one ES module.
//
//   import { OrchestratorInbox } from "https://notify.example.com/client/orchestrator-inbox.js";
//   const inbox = new OrchestratorInbox({ baseUrl: "https://notify.example.com", token });
//   inbox.addEventListener("change", () => render(inbox.list, inbox.unread));
//   await inbox.load(); inbox.connect();
//
// or the web component built on it:
//
//   <script type="module" src="https://notify.example.com/client/orchestrator-inbox.js"></script>
//   <orchestrator-inbox base-url="https://notify.example.com" token="ut_…"></orchestrator-inbox>
//
// Preference center: `await inbox.getPreferences()` lists the categories with their channels
// on/off (locked ones marked); `inbox.setPreference("social", "email", false)` changes one.
//
// The token is a per-user token minted by your backend (POST /v1/recipients/{id}/inapp-token
// with your API key); never put the API key in a page.

export const ENGAGEMENTS = Object.freeze(["seen", "read", "clicked", "acknowledged"]);
// Reporting an engagement implies the ones before it (the server records the same).
const IMPLIED = { seen: [], read: ["seen"], clicked: ["seen", "read"], acknowledged: ["seen", "read"] };
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

/** An HTTP error from the service: `status`, and the JSON `code`, `field` and `message`. */
export class InboxError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.name = "InboxError";
    this.status = status;
    this.code = error ? error.code : undefined;
    this.field = error ? error.field : undefined;
  }
}

/**
 * The user's inbox: pages of items, a live stream that keeps it current, the unread total,
 * and the reports (seen, read, clicked, acknowledged, archive, read-all).
 *
 * Events (EventTarget): "change" (items or unread changed), "item" (a new item arrived on
 * the stream, to display live, e.g. as a toast; detail = item; not sent for a `quiet` item,
 * which the policy keeps out of the live display: it only joins the list and the unread
 * count), "unread" (detail = count), "connected", "disconnected",
 * "revoked" (the token was revoked or expired: the inbox stops), "error" (detail = error).
 */
export class OrchestratorInbox extends EventTarget {
  constructor({ baseUrl = "", token, pageSize = 50 } = {}) {
    super();
    if (!token) throw new TypeError("OrchestratorInbox: a user token is required");
    this.baseUrl = String(baseUrl || "").replace(/\/+$/, "");
    this.token = token;
    this.pageSize = pageSize;
    this.unread = 0;
    this.nextCursor = null;
    this.connected = false;
    this.revoked = false;
    this.received = 0; // message events received on the stream, repeats of a resume included
    this._items = new Map(); // id -> item; an id is kept once however often it arrives
    this._source = null;
    this._lastEventId = null;
    this._retryMs = RETRY_MIN_MS;
    this._retryTimer = null;
    this._wanted = false; // connect() was called and close() was not
  }

  /** Items newest first. */
  get list() {
    return [...this._items.values()].sort((a, b) =>
      a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1);
  }

  get hasMore() {
    return this.nextCursor !== null;
  }

  get(id) {
    return this._items.get(id);
  }

  // -- listing ---------------------------------------------------------------------------
  /** Loads the first page (or, with {more: true}, the next one). Returns that page's items. */
  async load({ more = false } = {}) {
    const params = new URLSearchParams({ limit: String(this.pageSize) });
    if (more) {
      if (this.nextCursor === null) return [];
      params.set("cursor", this.nextCursor);
    }
    const data = await this._request("GET", `/v1/inbox?${params}`);
    this.nextCursor = data.next_cursor;
    for (const item of data.items) this._upsert(item);
    this._setUnread(data.unread, false);
    this._changed();
    return data.items;
  }

  loadMore() {
    return this.load({ more: true });
  }

  // -- the live stream -------------------------------------------------------------------
  /** Opens the stream and keeps it open: the browser reconnects by itself and resumes with
   * Last-Event-ID; if the server refused the stream, this retries with backoff, and stops
   * for good on a revoked or expired token. */
  connect() {
    this._wanted = true;
    if (this._source || this.revoked) return;
    clearTimeout(this._retryTimer);
    const params = new URLSearchParams({ token: this.token });
    if (this._lastEventId) params.set("last_event_id", this._lastEventId);
    const source = new EventSource(`${this.baseUrl}/v1/inbox/stream?${params}`);
    this._source = source;
    source.addEventListener("open", () => {
      this._retryMs = RETRY_MIN_MS;
      this.connected = true;
      this._emit("connected");
    });
    source.addEventListener("message", (e) => {
      if (e.lastEventId) this._lastEventId = e.lastEventId;
      this.received += 1;
      const item = JSON.parse(e.data);
      if (this._upsert(item)) {
        if (!item.quiet) this._emit("item", item);
        this._changed();
      }
    });
    source.addEventListener("unread", (e) => this._setUnread(JSON.parse(e.data).unread, true));
    source.addEventListener("revoked", () => this._stop());
    source.addEventListener("error", () => {
      if (source !== this._source) return;
      if (this.connected) {
        this.connected = false;
        this._emit("disconnected");
      }
      if (source.readyState === EventSource.CLOSED) this._recover();
    });
  }

  /** Closes the stream; connect() opens it again where it left off. */
  disconnect() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    if (this._source) {
      this._source.close();
      this._source = null;
    }
    if (this.connected) {
      this.connected = false;
      this._emit("disconnected");
    }
  }

  /** A fresh stream that resumes after the last item received (nothing lost, no repeats). */
  reconnect() {
    this.disconnect();
    this.connect();
  }

  close() {
    this.disconnect();
  }

  // -- reports ---------------------------------------------------------------------------
  /** Reports "seen", "read", "clicked" or "acknowledged" for one item. */
  async report(id, event) {
    if (!ENGAGEMENTS.includes(event)) throw new RangeError(`event must be one of ${ENGAGEMENTS.join(", ")}`);
    const result = await this._request("POST", `/v1/inbox/${encodeURIComponent(id)}/${event}`);
    const item = this._items.get(id);
    if (item) {
      const now = new Date().toISOString();
      const wasUnread = !item.read_at;
      for (const e of [...IMPLIED[event], event]) item[`${e}_at`] = item[`${e}_at`] || now;
      if (wasUnread && item.read_at) this._setUnread(Math.max(0, this.unread - 1), false);
      this._changed();
    }
    return result;
  }

  markSeen(id) { return this.report(id, "seen"); }
  markRead(id) { return this.report(id, "read"); }
  markClicked(id) { return this.report(id, "clicked"); }
  acknowledge(id) { return this.report(id, "acknowledged"); }

  /** Archives one item: it leaves the list and the unread count, on every device. */
  async archive(id) {
    const result = await this._request("POST", `/v1/inbox/${encodeURIComponent(id)}/archive`);
    const item = this._items.get(id);
    if (item) {
      this._items.delete(id);
      if (!item.read_at) this._setUnread(Math.max(0, this.unread - 1), false);
      this._changed();
    }
    return result;
  }

  /** Marks every item read; returns how many were unread. */
  async readAll() {
    const result = await this._request("POST", "/v1/inbox/read-all");
    const now = new Date().toISOString();
    for (const item of this._items.values()) {
      item.seen_at = item.seen_at || now;
      item.read_at = item.read_at || now;
    }
    this._setUnread(0, false);
    this._changed();
    return result.read;
  }

  // -- preference center -------------------------------------------------------------------
  /**
   * The user's preferences: `{ categories: [{ category, locked, unsubscribable,
   * channels: { in_app, push, email, sms } }] }` (true = on). Locked categories are always on.
   */
  getPreferences() {
    return this._request("GET", "/v1/inbox/preferences");
  }

  /** Changes several at once, e.g. `{ social: { email: false } }`; returns the new state. */
  updatePreferences(changes) {
    return this._request("PUT", "/v1/inbox/preferences", { preferences: changes });
  }

  /** Turns one channel of one category on or off; returns the new state. */
  setPreference(category, channel, on) {
    return this.updatePreferences({ [category]: { [channel]: Boolean(on) } });
  }

  // -- internals ---------------------------------------------------------------------------
  async _request(method, path, body) {
    let response;
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await fetch(this.baseUrl + path, {
        method, headers, mode: "cors", credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      this._emit("error", err);
      throw err;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new InboxError(response.status, data && data.error);
      if (response.status === 401) this._stop();
      this._emit("error", error);
      throw error;
    }
    return data;
  }

  /** The server refused or dropped the stream for good (EventSource gave up): find out why. */
  async _recover() {
    this._source = null;
    if (!this._wanted || this.revoked) return;
    try {
      await this._request("GET", "/v1/inbox?limit=1"); // 401 stops; otherwise retry
    } catch (err) {
      if (this.revoked) return;
    }
    if (!this._wanted) return;
    const delay = this._retryMs * (0.5 + Math.random() / 2);
    this._retryMs = Math.min(this._retryMs * 2, RETRY_MAX_MS);
    this._retryTimer = setTimeout(() => this.connect(), delay);
  }

  _stop() {
    if (this.revoked) return;
    this.revoked = true;
    this.disconnect();
    this._emit("revoked");
  }

  /** Adds or refreshes an item; true when it was new. Engagement times never go back. */
  _upsert(item) {
    const known = this._items.get(item.id);
    if (!known) {
      this._items.set(item.id, { ...item });
      return true;
    }
    for (const [key, value] of Object.entries(item)) {
      if (value !== null && value !== undefined) known[key] = value;
    }
    return false;
  }

  _setUnread(count, notifyChange) {
    if (typeof count !== "number" || count === this.unread) return;
    this.unread = count;
    this._emit("unread", count);
    if (notifyChange) this._changed();
  }

  _changed() {
    this._emit("change", { items: this.list, unread: this.unread });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

// -- the web component -----------------------------------------------------------------------
const STYLE = `
:host { display: inline-block; position: relative; font: var(--oi-font, 14px/1.4 system-ui, sans-serif);
  color: var(--oi-color, #1f2328); }
:host([hidden]) { display: none; }
.bell { position: relative; border: 0; background: none; cursor: pointer; padding: 6px;
  color: var(--oi-bell-color, currentColor); }
.bell svg { width: var(--oi-bell-size, 24px); height: var(--oi-bell-size, 24px); display: block; }
.badge { position: absolute; top: 0; right: 0; min-width: 18px; height: 18px; padding: 0 4px; box-sizing: border-box;
  border-radius: 9px; font-size: 11px; line-height: 18px; text-align: center;
  background: var(--oi-badge-bg, #d1242f); color: var(--oi-badge-color, #fff); }
.badge[hidden] { display: none; }
.panel { position: var(--oi-panel-position, absolute); right: 0; z-index: var(--oi-z-index, 1000);
  width: var(--oi-width, 360px); max-height: var(--oi-max-height, 480px); overflow: auto;
  background: var(--oi-bg, #fff); border: 1px solid var(--oi-border, #d0d7de);
  border-radius: var(--oi-radius, 8px); box-shadow: var(--oi-shadow, 0 8px 24px rgba(0,0,0,.12)); }
:host(:not([open])) .panel { display: none; }
header { display: flex; justify-content: space-between; align-items: center; padding: 8px 12px;
  border-bottom: 1px solid var(--oi-border, #d0d7de); font-weight: 600; }
header button, .more { border: 0; background: none; color: var(--oi-accent, #0969da); cursor: pointer; font: inherit; }
ul { list-style: none; margin: 0; padding: 0; }
li { display: flex; gap: 8px; padding: 10px 12px; border-bottom: 1px solid var(--oi-border, #d0d7de); cursor: pointer; }
li.unread { background: var(--oi-unread-bg, #f0f6ff); }
li .text { flex: 1; min-width: 0; }
li .title { font-weight: 600; }
li .body { margin: 2px 0; overflow-wrap: anywhere; }
li time { font-size: 12px; color: var(--oi-muted, #656d76); }
li .archive { border: 0; background: none; cursor: pointer; color: var(--oi-muted, #656d76); align-self: start; }
.empty { padding: 16px 12px; margin: 0; color: var(--oi-muted, #656d76); }
.empty[hidden], .more[hidden] { display: none; }
.more { display: block; width: 100%; padding: 8px; }
`;
const BELL = '<svg viewBox="0 0 24 24" aria-hidden="true" fill="currentColor"><path d="M12 22a2.5 2.5 0 0 0 ' +
  '2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 ' +
  '2v1h18v-1l-2-2Z"/></svg>';

const isHttps = (url) => {
  try {
    return new URL(url).protocol === "https:";
  } catch {
    return false;
  }
};

/**
 * <orchestrator-inbox base-url="https://notify.example.com" token="ut_…" open>
 * A bell with the unread badge and the list. An item shown in the open list is reported
 * seen; a click reports read and clicked, then fires a cancelable
 * "orchestrator-inbox-click" event (detail = item) and, unless cancelled, follows the
 * item's action_url if it is https. Style with CSS custom properties (--oi-accent,
 * --oi-badge-bg, --oi-bg, --oi-unread-bg, --oi-width, …) and ::part(bell | badge | panel |
 * header | read-all | list | item | unread | title | body | time | archive | empty | more).
 * The element's `inbox` property is its OrchestratorInbox.
 */
export class OrchestratorInboxElement extends HTMLElement {
  static get observedAttributes() {
    return ["base-url", "token"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${STYLE}</style>
      <button class="bell" part="bell" aria-label="Notifications" aria-expanded="false">${BELL}
        <span class="badge" part="badge" hidden></span></button>
      <section class="panel" part="panel" aria-label="Notifications">
        <header part="header"><span>Notifications</span>
          <button class="read-all" part="read-all" type="button">Mark all read</button></header>
        <ul part="list"></ul>
        <p class="empty" part="empty">No notifications</p>
        <button class="more" part="more" type="button" hidden>Load more</button>
      </section>`;
    this._bell = root.querySelector(".bell");
    this._badge = root.querySelector(".badge");
    this._list = root.querySelector("ul");
    this._empty = root.querySelector(".empty");
    this._more = root.querySelector(".more");
    this._rows = new Map(); // item id -> <li>
    this.inbox = null;
    this._bell.addEventListener("click", () => this.toggleAttribute("open"));
    root.querySelector(".read-all").addEventListener("click", () => this.inbox && this.inbox.readAll().catch(() => {}));
    this._more.addEventListener("click", () => this.inbox && this.inbox.loadMore().catch(() => {}));
    this._seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        const item = this.inbox && this.inbox.get(entry.target.dataset.id);
        this._seen.unobserve(entry.target);
        if (item && !item.seen_at) this.inbox.markSeen(item.id).catch(() => {});
      }
    });
  }

  connectedCallback() {
    this._start();
  }

  disconnectedCallback() {
    this._halt();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue !== newValue && this.isConnected) this._start();
  }

  _start() {
    this._halt();
    const token = this.getAttribute("token");
    if (!token) return;
    const inbox = new OrchestratorInbox({ baseUrl: this.getAttribute("base-url") || "", token });
    this.inbox = inbox;
    inbox.addEventListener("change", () => this._render());
    inbox.addEventListener("unread", () => this._render());
    inbox.addEventListener("revoked", () => this.dispatchEvent(new CustomEvent("orchestrator-inbox-revoked",
      { bubbles: true, composed: true })));
    inbox.load().catch(() => {}).finally(() => inbox.connect());
  }

  _halt() {
    if (this.inbox) this.inbox.close();
    this.inbox = null;
    for (const row of this._rows.values()) row.remove();
    this._rows.clear();
    this._seen.disconnect();
    this._render();
  }

  _render() {
    const inbox = this.inbox;
    const items = inbox ? inbox.list : [];
    const unread = inbox ? inbox.unread : 0;
    this._badge.hidden = unread === 0;
    this._badge.textContent = unread > 99 ? "99+" : String(unread);
    this._bell.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
    this._bell.setAttribute("aria-expanded", String(this.hasAttribute("open")));
    this._empty.hidden = items.length > 0;
    this._more.hidden = !(inbox && inbox.hasMore);
    const keep = new Set(items.map((i) => i.id));
    for (const [id, row] of this._rows) {
      if (!keep.has(id)) {
        this._seen.unobserve(row);
        row.remove();
        this._rows.delete(id);
      }
    }
    for (const item of items) {
      let row = this._rows.get(item.id);
      if (!row) {
        row = this._row(item);
        this._rows.set(item.id, row);
        if (!item.seen_at) this._seen.observe(row);
      }
      const unreadItem = !item.read_at;
      row.classList.toggle("unread", unreadItem);
      row.setAttribute("part", unreadItem ? "item unread" : "item");
      this._list.appendChild(row); // keeps the list in order; moving a node keeps it
    }
  }

  _row(item) {
    const row = document.createElement("li");
    row.dataset.id = item.id;
    row.tabIndex = 0;
    const text = document.createElement("div");
    text.className = "text";
    const title = document.createElement("div");
    title.className = "title";
    title.setAttribute("part", "title");
    title.textContent = item.title || "";
    const body = document.createElement("p");
    body.className = "body";
    body.setAttribute("part", "body");
    body.textContent = item.body || "";
    const time = document.createElement("time");
    time.setAttribute("part", "time");
    time.dateTime = item.created_at;
    time.textContent = new Date(item.created_at).toLocaleString();
    text.append(title, body, time);
    const archive = document.createElement("button");
    archive.type = "button";
    archive.className = "archive";
    archive.setAttribute("part", "archive");
    archive.setAttribute("aria-label", "Archive");
    archive.textContent = "×";
    archive.addEventListener("click", (e) => {
      e.stopPropagation();
      this.inbox && this.inbox.archive(item.id).catch(() => {});
    });
    row.append(text, archive);
    row.addEventListener("click", () => this._open(item.id));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") this._open(item.id); });
    return row;
  }

  async _open(id) {
    const inbox = this.inbox;
    const item = inbox && inbox.get(id);
    if (!item) return;
    try {
      if (!item.read_at) await inbox.markRead(id);
      if (!item.clicked_at) await inbox.markClicked(id);
    } catch {
      // reported on the inbox's "error" event; still let the user follow the link
    }
    const click = new CustomEvent("orchestrator-inbox-click", { detail: item, bubbles: true, composed: true,
      cancelable: true });
    if (this.dispatchEvent(click) && item.action_url && isHttps(item.action_url)) {
      window.location.assign(item.action_url);
    }
  }
}

if (typeof customElements !== "undefined" && !customElements.get("orchestrator-inbox")) {
  customElements.define("orchestrator-inbox", OrchestratorInboxElement);
}
