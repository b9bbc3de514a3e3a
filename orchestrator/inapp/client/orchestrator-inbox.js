// The orchestrator's in-app client: no dependencies, one ES module, no build step.
//
//   <script type="module" src="https://notify.example.com/client/orchestrator-inbox.js"></script>
//   <orchestrator-inbox base-url="https://notify.example.com" locale="en" toasts></orchestrator-inbox>
//   <script type="module">
//     document.querySelector("orchestrator-inbox").tokenProvider = async () =>
//       (await fetch("/my-backend/inapp-token", { method: "POST" })).json(); // {token, expires_at}
//   </script>
//
// or the object the element is built on:
//
//   import { OrchestratorInbox } from "https://notify.example.com/client/orchestrator-inbox.js";
//   const inbox = new OrchestratorInbox({ baseUrl: "https://notify.example.com", tokenProvider });
//   inbox.addEventListener("change", () => render(inbox.list, inbox.unread));
//   await inbox.start();
//
// The token is a per-user token minted by your backend (POST /v1/recipients/{id}/inapp-token
// with your API key); never put the API key in a page. A `tokenProvider` lets the client get a
// fresh one before the current one expires (and after a 401 `token_expired`).

export const ENGAGEMENTS = Object.freeze(["seen", "read", "clicked", "acknowledged"]);
// Reporting an engagement implies the ones before it (the server records the same).
const IMPLIED = { seen: [], read: ["seen"], clicked: ["seen", "read"], acknowledged: ["seen", "read"] };
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
const TOKEN_RETRY_MIN_MS = 1000;
const TOKEN_RETRY_MAX_MS = 60000;
const REFRESH_LEAD_MS = 60000; // refresh this long before expiry, or 10% of the lifetime if less
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why the client signed out (the `orchestrator-inbox-signed-out` event's `detail.reason`). */
export const SIGN_OUT_REASONS = Object.freeze(["revoked", "expired", "unauthorized"]);

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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The user's inbox: pages of items, a live stream that keeps it current, the unread total,
 * the reports (seen, read, clicked, acknowledged, archive, read-all) and the preferences.
 *
 * State is the server's: `unread` is always the last total the server sent (never counted
 * locally), and an item changed on another tab or device arrives as a stream `item` event.
 *
 * Events (EventTarget): "change" (items or unread changed), "item" (a new item arrived on
 * the stream, to display live, e.g. as a toast; detail = item; not sent for a `quiet` item,
 * which only joins the list and the unread count), "unread" (detail = count), "connected",
 * "disconnected", "token" (a new token is in use; detail = {expiresAt}), "signedout"
 * (detail = {reason: "revoked" | "expired" | "unauthorized"}: list and count are cleared and
 * the inbox stops), "error" (detail = {error, action}).
 */
export class OrchestratorInbox extends EventTarget {
  constructor({ baseUrl = "", token = null, expiresAt = null, tokenProvider = null, pageSize = 50 } = {}) {
    super();
    if (!token && typeof tokenProvider !== "function") {
      throw new TypeError("OrchestratorInbox: a user token or a tokenProvider is required");
    }
    this.baseUrl = String(baseUrl || "").replace(/\/+$/, "");
    this.pageSize = pageSize;
    this.unread = 0;
    this.nextCursor = null;
    this.connected = false;
    this.signedOut = null; // the reason, once signed out
    this.received = 0; // message events received on the stream, repeats of a resume included
    this._items = new Map(); // id -> item; an id is kept once however often it arrives
    this._source = null;
    this._lastEventId = null;
    this._retryMs = RETRY_MIN_MS;
    this._retryTimer = null;
    this._refreshTimer = null;
    this._refreshing = null; // the pending token refresh, shared by every caller
    this._wanted = false; // connect() was called and disconnect() was not
    this._closed = false; // close() was called (and connect() was not since)
    this.token = null;
    this.expiresAt = null;
    this.tokenProvider = tokenProvider;
    if (token) this.setToken(token, expiresAt);
  }

  /** `async () => token | {token, expires_at}`: asked for a new token before expiry. */
  get tokenProvider() {
    return this._tokenProvider;
  }

  set tokenProvider(fn) {
    this._tokenProvider = typeof fn === "function" ? fn : null;
    this._scheduleRefresh();
  }

  /** Kept for older callers: true once signed out for any reason. */
  get revoked() {
    return this.signedOut !== null;
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

  /** Gets a token if needed, loads the first page and opens the stream. */
  async start() {
    if (!this.token) await this.refreshToken();
    try {
      await this.load();
    } finally {
      if (!this.signedOut && !this._closed) this.connect();
    }
  }

  // -- the token ---------------------------------------------------------------------------
  /** Uses a new token (`expiresAt`: ISO text, Date or ms, or null when unknown); an open
   * stream is reopened with it and resumes where it was. */
  setToken(token, expiresAt = null) {
    if (!token) throw new TypeError("OrchestratorInbox: empty token");
    const changed = token !== this.token;
    this.token = String(token);
    const at = expiresAt === null || expiresAt === undefined ? NaN : new Date(expiresAt).getTime();
    this.expiresAt = Number.isFinite(at) ? at : null;
    this._issuedAt = Date.now();
    this._scheduleRefresh();
    if (changed && this._source) this.reconnect();
    this._emit("token", { expiresAt: this.expiresAt });
  }

  /** Asks the tokenProvider for a new token, retrying with backoff (1 s, 2 s … 60 s) until it
   * answers; concurrent callers share one refresh. Resolves with the token. */
  refreshToken() {
    if (typeof this.tokenProvider !== "function") {
      return Promise.reject(new TypeError("OrchestratorInbox: no tokenProvider to refresh the token"));
    }
    if (!this._refreshing) {
      this._refreshing = this._refresh().finally(() => { this._refreshing = null; });
    }
    return this._refreshing;
  }

  async _refresh() {
    let delay = TOKEN_RETRY_MIN_MS;
    for (;;) {
      if (this.signedOut || this._closed) throw new Error("closed");
      try {
        const answer = await this.tokenProvider();
        const token = typeof answer === "string" ? answer : answer && answer.token;
        if (!token) throw new TypeError("the tokenProvider answered no token");
        this.setToken(token, typeof answer === "string" ? null : answer.expires_at ?? answer.expiresAt ?? null);
        return this.token;
      } catch (error) {
        this._emit("error", { error, action: "token" });
      }
      await sleep(delay);
      delay = Math.min(delay * 2, TOKEN_RETRY_MAX_MS);
    }
  }

  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    if (this.expiresAt === null || typeof this.tokenProvider !== "function" || this.signedOut) return;
    const lifetime = Math.max(0, this.expiresAt - this._issuedAt);
    const lead = Math.min(REFRESH_LEAD_MS, lifetime / 10);
    // At least a second apart: a clock behind the server's must not make refreshes spin.
    const wait = Math.max(1000, this.expiresAt - lead - Date.now());
    this._refreshTimer = setTimeout(() => this.refreshToken().catch(() => {}), Math.min(wait, MAX_TIMER_MS));
  }

  /** A 401 (or the stream's `expired`/`revoked`): refresh when the token only expired and a
   * provider can replace it; otherwise sign out. Resolves true when a new token is in use. */
  async _onAuthFailure(reason) {
    const pastExpiry = this.expiresAt !== null && Date.now() >= this.expiresAt - 1000;
    const expired = reason === "expired" || pastExpiry;
    if (expired && typeof this.tokenProvider === "function") {
      try {
        await this.refreshToken();
        return true;
      } catch {
        return false; // signed out meanwhile
      }
    }
    this.signOut(expired ? "expired" : reason);
    return false;
  }

  // -- listing ---------------------------------------------------------------------------
  /** Loads the first page (or, with {more: true}, the next one). Returns that page's items. */
  async load({ more = false } = {}) {
    const params = new URLSearchParams({ limit: String(this.pageSize) });
    if (more) {
      if (this.nextCursor === null) return [];
      params.set("cursor", this.nextCursor);
    }
    const data = await this._request("GET", `/v1/inbox?${params}`, undefined, more ? "load-more" : "load");
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
   * Last-Event-ID; if the server refused the stream, this retries with backoff, refreshes an
   * expired token through the tokenProvider, and stops for good once signed out. */
  connect() {
    this._wanted = true;
    this._closed = false;
    if (this._source || this.signedOut || !this.token) return;
    clearTimeout(this._retryTimer);
    const params = new URLSearchParams({ token: this.token });
    if (this._lastEventId) params.set("last_event_id", this._lastEventId);
    const source = new EventSource(`${this.baseUrl}/v1/inbox/stream?${params}`);
    this._source = source;
    const mine = (handler) => (e) => { if (source === this._source) handler(e); };
    source.addEventListener("open", mine(() => {
      this._retryMs = RETRY_MIN_MS;
      this.connected = true;
      this._emit("connected");
    }));
    source.addEventListener("message", mine((e) => {
      if (e.lastEventId) this._lastEventId = e.lastEventId;
      this.received += 1;
      const item = JSON.parse(e.data);
      if (this._upsert(item)) {
        if (!item.quiet) this._emit("item", item);
        this._changed();
      }
    }));
    // An item already shown changed on some tab or device (this one included).
    source.addEventListener("item", mine((e) => {
      if (this._apply(JSON.parse(e.data))) this._changed();
    }));
    source.addEventListener("unread", mine((e) => this._setUnread(JSON.parse(e.data).unread, true)));
    source.addEventListener("revoked", mine(() => this._streamEnded("revoked")));
    source.addEventListener("expired", mine(() => this._streamEnded("expired")));
    source.addEventListener("error", mine(() => {
      if (this.connected) {
        this.connected = false;
        this._emit("disconnected");
      }
      if (source.readyState === EventSource.CLOSED) this._recover();
    }));
  }

  /** Closes the stream; connect() opens it again where it left off. */
  disconnect() {
    this._wanted = false;
    this._closeSource();
  }

  /** A fresh stream that resumes after the last item received (nothing lost, no repeats). */
  reconnect() {
    this.disconnect();
    this.connect();
  }

  /** Closes the stream and stops refreshing the token (until connect() is called again). */
  close() {
    this._closed = true;
    this.disconnect();
    clearTimeout(this._refreshTimer);
  }

  /** Forgets everything shown (list and count), stops, and emits "signedout" {reason}. */
  signOut(reason = "unauthorized") {
    if (this.signedOut) return;
    this.signedOut = SIGN_OUT_REASONS.includes(reason) ? reason : "unauthorized";
    this.close();
    this._items.clear();
    this.nextCursor = null;
    this.unread = 0;
    this._emit("unread", 0);
    this._changed();
    this._emit("signedout", { reason: this.signedOut });
  }

  _closeSource() {
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

  async _streamEnded(reason) {
    const wanted = this._wanted;
    this._closeSource();
    if (await this._onAuthFailure(reason)) {
      if (wanted) this.connect();
    }
  }

  /** The server refused or dropped the stream for good (EventSource gave up): find out why. */
  async _recover() {
    this._source = null;
    if (!this._wanted || this.signedOut) return;
    try {
      await this._request("GET", "/v1/inbox?limit=1", undefined, "connect"); // 401: refresh or sign out
    } catch {
      if (this.signedOut) return;
    }
    if (!this._wanted || this._source) return;
    const delay = this._retryMs * (0.5 + Math.random() / 2);
    this._retryMs = Math.min(this._retryMs * 2, RETRY_MAX_MS);
    this._retryTimer = setTimeout(() => this.connect(), delay);
  }

  // -- reports ---------------------------------------------------------------------------
  /** Reports "seen", "read", "clicked" or "acknowledged" for one item. The unread count is
   * left to the server: its stream sends the new total to every tab, this one included. */
  async report(id, event) {
    if (!ENGAGEMENTS.includes(event)) throw new RangeError(`event must be one of ${ENGAGEMENTS.join(", ")}`);
    const result = await this._request("POST", `/v1/inbox/${encodeURIComponent(id)}/${event}`, undefined, event);
    const item = this._items.get(id);
    if (item) {
      const now = new Date().toISOString();
      for (const e of [...IMPLIED[event], event]) item[`${e}_at`] = item[`${e}_at`] || now;
      this._changed();
    }
    this._syncUnread();
    return result;
  }

  markSeen(id) { return this.report(id, "seen"); }
  markRead(id) { return this.report(id, "read"); }
  markClicked(id) { return this.report(id, "clicked"); }
  acknowledge(id) { return this.report(id, "acknowledged"); }

  /** Archives one item: it leaves the list and the unread count, on every device. */
  async archive(id) {
    const result = await this._request("POST", `/v1/inbox/${encodeURIComponent(id)}/archive`, undefined, "archive");
    if (this._items.delete(id)) this._changed();
    this._syncUnread();
    return result;
  }

  /** Marks every item read except those that require an acknowledgement (the server never
   * marks those read in bulk). Returns the answer: `{read, requires_acknowledgement}`. */
  async readAll() {
    const result = await this._request("POST", "/v1/inbox/read-all", undefined, "read-all");
    const now = new Date().toISOString();
    for (const item of this._items.values()) {
      if (item.requires_acknowledgement && !item.acknowledged_at) continue;
      item.seen_at = item.seen_at || now;
      item.read_at = item.read_at || now;
    }
    this._changed();
    this._syncUnread();
    return result;
  }

  // -- preference center -------------------------------------------------------------------
  /**
   * The user's preferences: `{ categories: [{ category, label, description, locked,
   * unsubscribable, channels: { in_app, push, email, sms } }], channels: [{id, label}],
   * locale }` (true = on; labels in `locale` when the server has them). Locked categories are
   * always on.
   */
  getPreferences({ locale } = {}) {
    const query = locale ? `?${new URLSearchParams({ locale })}` : "";
    return this._request("GET", `/v1/inbox/preferences${query}`, undefined, "preferences");
  }

  /** Changes several at once, e.g. `{ social: { email: false } }`; returns the new state. */
  updatePreferences(changes, { locale } = {}) {
    const query = locale ? `?${new URLSearchParams({ locale })}` : "";
    return this._request("PUT", `/v1/inbox/preferences${query}`, { preferences: changes }, "preferences");
  }

  /** Turns one channel of one category on or off; returns the new state. */
  setPreference(category, channel, on, options) {
    return this.updatePreferences({ [category]: { [channel]: Boolean(on) } }, options);
  }

  // -- internals ---------------------------------------------------------------------------
  async _request(method, path, body, action, retried = false) {
    if (this.signedOut) throw new InboxError(401, { code: "signed_out", message: "signed out" });
    let response;
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await fetch(this.baseUrl + path, {
        method, headers, mode: "cors", credentials: "omit",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      this._emit("error", { error, action });
      throw error;
    }
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const error = new InboxError(response.status, data && data.error);
    if (response.status === 401) {
      const reason = { token_expired: "expired", token_revoked: "revoked" }[error.code] || "unauthorized";
      if (retried) this.signOut(reason); // refused again with a fresh token
      else if (await this._onAuthFailure(reason)) return this._request(method, path, body, action, true);
      throw error; // signed out: that is the event the app acts on
    }
    this._emit("error", { error, action });
    throw error;
  }

  /** Without a stream to send the new total, asks the server for it. */
  _syncUnread() {
    if (this.connected || this.signedOut) return;
    this._request("GET", "/v1/inbox?limit=1", undefined, "unread")
      .then((data) => this._setUnread(data.unread, true))
      .catch(() => {});
  }

  /** Adds or refreshes an item; true when it was new. Engagement times never go back. */
  _upsert(item) {
    if (item.archived_at) {
      this._items.delete(item.id);
      return false;
    }
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

  /** An `item` event: the new state of an item; archived ones leave. True if anything changed. */
  _apply(item) {
    const known = this._items.get(item.id);
    if (!known) return false; // not on a loaded page: it shows when its page is loaded
    if (item.archived_at) {
      this._items.delete(item.id);
      return true;
    }
    this._upsert(item);
    return true;
  }

  _setUnread(count, notifyChange) {
    if (typeof count !== "number" || count === this.unread || this.signedOut) return;
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

// -- translations ----------------------------------------------------------------------------
// Every string the element shows. `{n}`, `{title}`, `{category}`, `{channel}` are filled in.
// Add a language with `STRINGS.xx = {...}` before the element starts, or override some strings
// of one element with its `strings` property.
export const STRINGS = {
  en: {
    notifications: "Notifications",
    bellUnread: "Notifications, {n} unread",
    close: "Close",
    markAllRead: "Mark all read",
    markedAllRead: "Marked {n} read.",
    markedAllReadExceptAck: "Marked {n} read. {m} still need your acknowledgement.",
    filterLabel: "Show",
    filterAll: "All",
    filterUnread: "Unread",
    empty: "No notifications",
    emptyUnread: "No unread notifications",
    loadMore: "Load more",
    unread: "Unread",
    archive: "Archive",
    archiveItem: "Archive “{title}”",
    acknowledge: "Acknowledge",
    acknowledgeItem: "Acknowledge “{title}”",
    acknowledged: "Acknowledged",
    needsAcknowledgement: "Needs your acknowledgement",
    newItem: "New notification: {title}",
    dismiss: "Dismiss",
    preferences: "Preferences",
    preferencesTitle: "Notification preferences",
    preferencesIntro: "Choose how each kind of message reaches you.",
    back: "Back to notifications",
    category: "Messages",
    locked: "Always on",
    lockedExplanation: "Required for your security, your account or legal reasons, so it can't be turned off.",
    channelOn: "{category} by {channel}",
    saved: "Saved.",
    loading: "Loading…",
    signedOut: "You are signed out of notifications.",
    errorLoad: "Notifications could not be loaded. Please try again.",
    errorAction: "That didn't work. Please try again.",
    errorPreferences: "Preferences could not be saved. Please try again.",
    reconnecting: "Reconnecting to notifications…",
    channel_in_app: "In-app",
    channel_push: "Push",
    channel_email: "Email",
    channel_sms: "SMS",
  },
  ko: {
    notifications: "알림",
    bellUnread: "알림, 읽지 않음 {n}개",
    close: "닫기",
    markAllRead: "모두 읽음으로 표시",
    markedAllRead: "{n}개를 읽음으로 표시했습니다.",
    markedAllReadExceptAck: "{n}개를 읽음으로 표시했습니다. {m}개는 확인이 필요합니다.",
    filterLabel: "보기",
    filterAll: "전체",
    filterUnread: "읽지 않음",
    empty: "알림이 없습니다",
    emptyUnread: "읽지 않은 알림이 없습니다",
    loadMore: "더 보기",
    unread: "읽지 않음",
    archive: "보관",
    archiveItem: "“{title}” 보관",
    acknowledge: "확인",
    acknowledgeItem: "“{title}” 확인",
    acknowledged: "확인함",
    needsAcknowledgement: "확인이 필요합니다",
    newItem: "새 알림: {title}",
    dismiss: "닫기",
    preferences: "설정",
    preferencesTitle: "알림 설정",
    preferencesIntro: "메시지 종류별로 받을 방법을 선택하세요.",
    back: "알림으로 돌아가기",
    category: "메시지",
    locked: "항상 켜짐",
    lockedExplanation: "보안, 계정 또는 법적 사유로 필요하므로 끌 수 없습니다.",
    channelOn: "{category} - {channel}",
    saved: "저장했습니다.",
    loading: "불러오는 중…",
    signedOut: "알림에서 로그아웃되었습니다.",
    errorLoad: "알림을 불러오지 못했습니다. 다시 시도해 주세요.",
    errorAction: "처리하지 못했습니다. 다시 시도해 주세요.",
    errorPreferences: "설정을 저장하지 못했습니다. 다시 시도해 주세요.",
    reconnecting: "알림에 다시 연결하는 중…",
    channel_in_app: "인앱",
    channel_push: "푸시",
    channel_email: "이메일",
    channel_sms: "문자",
  },
};

const humanise = (id) => {
  const text = String(id).replace(/[_-]+/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
};

// -- the web component -----------------------------------------------------------------------
const STYLE = `
:host { display: inline-block; position: relative; font: var(--oi-font, 14px/1.4 system-ui, sans-serif);
  color: var(--oi-color, #1f2328); }
:host([hidden]) { display: none; }
button { font: inherit; }
.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.bell { position: relative; border: 0; background: none; cursor: pointer; padding: 6px; border-radius: 6px;
  color: var(--oi-bell-color, currentColor); }
.bell svg { width: var(--oi-bell-size, 24px); height: var(--oi-bell-size, 24px); display: block; }
:focus-visible { outline: 2px solid var(--oi-focus, var(--oi-accent, #0969da)); outline-offset: 2px; }
.badge { position: absolute; top: 0; right: 0; min-width: 18px; height: 18px; padding: 0 4px; box-sizing: border-box;
  border-radius: 9px; font-size: 11px; line-height: 18px; text-align: center;
  background: var(--oi-badge-bg, #d1242f); color: var(--oi-badge-color, #fff); }
[hidden] { display: none !important; }
.panel { position: var(--oi-panel-position, absolute); right: 0; z-index: var(--oi-z-index, 1000);
  width: var(--oi-width, 360px); max-width: calc(100vw - 16px); max-height: var(--oi-max-height, 480px);
  overflow: auto; box-sizing: border-box; background: var(--oi-bg, #fff); border: 1px solid var(--oi-border, #d0d7de);
  border-radius: var(--oi-radius, 8px); box-shadow: var(--oi-shadow, 0 8px 24px rgba(0,0,0,.12)); }
.panel:focus { outline: none; }
:host(:not([open])) .panel { display: none; }
.header { display: flex; flex-wrap: wrap; gap: 4px 8px; justify-content: space-between; align-items: center;
  padding: 8px 12px; border-bottom: 1px solid var(--oi-border, #d0d7de); }
h2 { font-size: 1em; margin: 0; }
.tools { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; }
.link, .more { border: 0; background: none; color: var(--oi-accent, #0969da); cursor: pointer; padding: 4px 0; }
.close { border: 0; background: none; cursor: pointer; color: var(--oi-muted, #656d76); font-size: 18px;
  line-height: 1; padding: 4px 6px; }
.filter { display: flex; gap: 4px; padding: 6px 12px; border-bottom: 1px solid var(--oi-border, #d0d7de); }
.filter button { border: 1px solid var(--oi-border, #d0d7de); background: var(--oi-bg, #fff); color: inherit;
  border-radius: 999px; padding: 2px 10px; cursor: pointer; }
.filter button[aria-pressed="true"] { background: var(--oi-accent, #0969da); border-color: var(--oi-accent, #0969da);
  color: var(--oi-accent-contrast, #fff); }
.notice { margin: 0; padding: 8px 12px; background: var(--oi-notice-bg, #fff8c5); color: var(--oi-notice-color, #3b2300); }
ul { list-style: none; margin: 0; padding: 0; }
li { display: flex; gap: 8px; padding: 10px 12px; border-bottom: 1px solid var(--oi-border, #d0d7de); cursor: pointer; }
li.unread { background: var(--oi-unread-bg, #f0f6ff); }
li img { width: 48px; height: 48px; object-fit: cover; border-radius: 4px; flex: none; }
li .text { flex: 1; min-width: 0; }
li .open { display: block; width: 100%; text-align: left; border: 0; background: none; padding: 0; color: inherit;
  cursor: pointer; }
li .title { display: block; font-weight: 600; overflow-wrap: anywhere; }
li .body { display: block; margin: 2px 0; overflow-wrap: anywhere; }
li time, li .meta { font-size: 12px; color: var(--oi-muted, #656d76); }
li .actions { display: flex; flex-direction: column; align-items: flex-end; gap: 4px; }
li .archive { border: 0; background: none; cursor: pointer; color: var(--oi-muted, #656d76); font-size: 16px;
  padding: 2px 6px; }
li .ack { border: 1px solid var(--oi-accent, #0969da); background: var(--oi-bg, #fff); color: var(--oi-accent, #0969da);
  border-radius: 6px; padding: 2px 8px; cursor: pointer; white-space: nowrap; }
li .needs-ack { display: block; font-size: 12px; font-weight: 600; color: var(--oi-attention, #7d4e00); }
.empty { padding: 16px 12px; margin: 0; color: var(--oi-muted, #656d76); }
.more { display: block; width: 100%; padding: 8px; }
.prefs { padding: 8px 12px 12px; }
.prefs p { margin: 4px 0 8px; }
.prefs table { border-collapse: collapse; width: 100%; }
.prefs th, .prefs td { padding: 6px 4px; border-bottom: 1px solid var(--oi-border, #d0d7de); text-align: center;
  vertical-align: top; }
.prefs thead th { font-size: 12px; font-weight: 600; }
.prefs th[scope="row"], .prefs thead th:first-child { text-align: left; font-weight: 600; }
.prefs .desc, .prefs .lock { display: block; font-weight: 400; font-size: 12px; color: var(--oi-muted, #656d76); }
.prefs input { width: 18px; height: 18px; margin: 0; accent-color: var(--oi-accent, #0969da); }
.toasts { position: fixed; right: 16px; bottom: 16px; z-index: var(--oi-z-index, 1000); display: flex;
  flex-direction: column; gap: 8px; width: min(var(--oi-width, 360px), calc(100vw - 32px)); }
.toast { display: flex; gap: 8px; align-items: start; padding: 10px 12px; background: var(--oi-bg, #fff);
  border: 1px solid var(--oi-border, #d0d7de); border-radius: var(--oi-radius, 8px);
  box-shadow: var(--oi-shadow, 0 8px 24px rgba(0,0,0,.12)); }
.toast .text { flex: 1; min-width: 0; overflow-wrap: anywhere; }
.toast .title { display: block; font-weight: 600; }
.toast button { border: 0; background: none; cursor: pointer; color: var(--oi-muted, #656d76); font-size: 16px; }
@media (max-width: 479.98px) {
  .panel { position: fixed; inset: 0; width: auto; max-width: none; max-height: none; height: 100%;
    border: 0; border-radius: 0; box-shadow: none; }
  .header { position: sticky; top: 0; background: var(--oi-bg, #fff); z-index: 1; }
  .toasts { left: 8px; right: 8px; bottom: 8px; width: auto; }
}
`;
const SHEET = typeof matchMedia === "function" ? matchMedia("(max-width: 479.98px)") : { matches: false };
const BELL = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="currentColor"><path d="M12 22a2.5 ' +
  '2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 ' +
  '11v5l-2 2v1h18v-1l-2-2Z"/></svg>';
const TOAST_MS = 6000;
const MAX_TOASTS = 3;

const isHttps = (url) => {
  try {
    return new URL(url).protocol === "https:";
  } catch {
    return false;
  }
};
const isImageUrl = (url) => {
  try {
    return ["https:", "http:"].includes(new URL(url, location.href).protocol);
  } catch {
    return false;
  }
};

let instances = 0;

/**
 * <orchestrator-inbox base-url="https://notify.example.com" token="ut_…" locale="ko" toasts open>
 *
 * A bell with the unread badge and a panel: the list (All / Unread), "Mark all read", an
 * Acknowledge action on items that require it, and the user's preferences. An item shown in
 * the open list is reported seen; a click reports read and clicked, then fires a cancelable
 * "orchestrator-inbox-click" event (detail = item) and, unless cancelled, follows the item's
 * https action_url.
 *
 * Properties: `tokenProvider` (async () => token | {token, expires_at}), `strings` (overrides
 * of STRINGS), `inbox` (its OrchestratorInbox). Attributes: base-url, token, locale, toasts,
 * open. Events (bubbling, composed): orchestrator-inbox-click, orchestrator-inbox-signed-out
 * {reason}, orchestrator-inbox-error {error, action, message}, orchestrator-inbox-toggle {open}.
 * Style with CSS custom properties (--oi-accent, --oi-badge-bg, --oi-bg, --oi-unread-bg,
 * --oi-width, …) and ::part(bell | badge | panel | header | heading | close | read-all |
 * filter | preferences-button | notice | list | item | unread | image | title | body | time |
 * acknowledge | archive | empty | more | preferences | preferences-table | toasts | toast).
 */
export class OrchestratorInboxElement extends HTMLElement {
  static get observedAttributes() {
    return ["base-url", "token", "locale", "open"];
  }

  constructor() {
    super();
    const n = ++instances;
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${STYLE}</style>
      <button class="bell" part="bell" type="button" aria-expanded="false" aria-controls="oi-panel-${n}">${BELL}
        <span class="badge" part="badge" aria-hidden="true" hidden></span></button>
      <section class="panel" part="panel" id="oi-panel-${n}" tabindex="-1" aria-labelledby="oi-heading-${n}">
        <div class="header" part="header"><h2 id="oi-heading-${n}" part="heading"></h2>
          <span class="tools">
            <button class="link read-all" part="read-all" type="button"></button>
            <button class="link prefs-toggle" part="preferences-button" type="button"></button>
            <button class="close" part="close" type="button"><span aria-hidden="true">×</span><span class="sr-only"></span></button>
          </span></div>
        <p class="notice" part="notice" role="status" hidden></p>
        <div class="view-list">
          <div class="filter" part="filter" role="group">
            <button type="button" data-filter="all" aria-pressed="true"></button>
            <button type="button" data-filter="unread" aria-pressed="false"></button>
          </div>
          <ul part="list" role="list"></ul>
          <p class="empty" part="empty"></p>
          <button class="more" part="more" type="button" hidden></button>
        </div>
        <div class="prefs" part="preferences" hidden></div>
      </section>
      <div class="toasts" part="toasts"></div>
      <div class="sr-only live" role="status" aria-live="polite"></div>`;
    const $ = (sel) => root.querySelector(sel);
    this._bell = $(".bell");
    this._badge = $(".badge");
    this._panel = $(".panel");
    this._heading = $("h2");
    this._readAll = $(".read-all");
    this._prefsToggle = $(".prefs-toggle");
    this._close = $(".close");
    this._notice = $(".notice");
    this._viewList = $(".view-list");
    this._filter = $(".filter");
    this._list = $("ul");
    this._empty = $(".empty");
    this._more = $(".more");
    this._prefs = $(".prefs");
    this._toasts = $(".toasts");
    this._live = $(".live");
    this._rows = new Map(); // item id -> <li>
    this._strings = null;
    this._tokenProvider = null;
    this._filterValue = "all";
    this._view = "list";
    this.inbox = null;

    this._bell.addEventListener("click", () => this.toggle());
    this._close.addEventListener("click", () => this.hide({ focusBell: true }));
    this._readAll.addEventListener("click", () => this._markAllRead());
    this._prefsToggle.addEventListener("click", () => this._showView(this._view === "list" ? "preferences" : "list"));
    this._more.addEventListener("click", () => this._act("load-more", () => this.inbox.loadMore()));
    this._filter.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-filter]");
      if (!button) return;
      this._filterValue = button.dataset.filter;
      this._render();
    });
    this._onKey = (e) => {
      if (e.key === "Escape" && this.hasAttribute("open")) {
        e.preventDefault();
        this.hide({ focusBell: true });
      } else if (e.key === "Tab" && this.hasAttribute("open") && SHEET.matches) {
        this._trapTab(e);
      }
    };
    // Below 480 px the panel is a full-screen sheet: a modal dialog that keeps Tab inside.
    this._onSheet = () => {
      if (SHEET.matches) {
        this._panel.setAttribute("role", "dialog");
        this._panel.setAttribute("aria-modal", "true");
      } else {
        this._panel.removeAttribute("role");
        this._panel.removeAttribute("aria-modal");
      }
    };
    this._onPointer = (e) => {
      if (this.hasAttribute("open") && !e.composedPath().includes(this)) {
        const focusInside = this.contains(document.activeElement) || document.activeElement === document.body;
        this.hide({ focusBell: focusInside });
      }
    };
    this._seen = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting || !this.hasAttribute("open")) continue;
        const item = this.inbox && this.inbox.get(entry.target.dataset.id);
        this._seen.unobserve(entry.target);
        if (item && !item.seen_at) this.inbox.markSeen(item.id).catch(() => {});
      }
    });
  }

  _trapTab(e) {
    const focusable = [...this._panel.querySelectorAll(
      'button, [href], input, select, textarea, [tabindex]:not([tabindex="-1"])')]
      .filter((el) => !el.disabled && !el.closest("[hidden]") && el.getClientRects().length > 0);
    if (!focusable.length) return;
    const first = focusable[0], last = focusable[focusable.length - 1];
    const active = this.shadowRoot.activeElement;
    if (e.shiftKey && (active === first || active === this._panel || !this._panel.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !this._panel.contains(active))) {
      e.preventDefault();
      first.focus();
    }
  }

  // -- properties ------------------------------------------------------------------------
  get tokenProvider() {
    return this._tokenProvider;
  }

  set tokenProvider(fn) {
    this._tokenProvider = typeof fn === "function" ? fn : null;
    if (this.inbox && !this.inbox.signedOut) this.inbox.tokenProvider = this._tokenProvider;
    else if (this._mounted) this._start();
  }

  get strings() {
    return this._strings;
  }

  /** Overrides of some strings (keys of STRINGS.en) for this element. */
  set strings(value) {
    this._strings = value && typeof value === "object" ? { ...value } : null;
    this._relabel();
  }

  get locale() {
    const wanted = (this.getAttribute("locale") || document.documentElement.lang || "en").toLowerCase();
    return STRINGS[wanted] ? wanted : STRINGS[wanted.split("-")[0]] ? wanted.split("-")[0] : "en";
  }

  /** One translated string with `{name}` placeholders filled in. */
  t(key, values = {}) {
    const text = (this._strings && this._strings[key]) ?? STRINGS[this.locale][key] ?? STRINGS.en[key] ?? key;
    return String(text).replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
  }

  // -- lifecycle -------------------------------------------------------------------------
  connectedCallback() {
    // A property the page set before this module defined the element hides the setter: re-set it.
    for (const name of ["tokenProvider", "strings"]) {
      if (Object.prototype.hasOwnProperty.call(this, name)) {
        const value = this[name];
        delete this[name];
        this[name] = value;
      }
    }
    this._mounted = true; // attributes set from now on are changes; the ones before are read here
    document.addEventListener("keydown", this._onKey);
    document.addEventListener("pointerdown", this._onPointer);
    if (SHEET.addEventListener) SHEET.addEventListener("change", this._onSheet);
    this._onSheet();
    this._relabel();
    this._start();
  }

  disconnectedCallback() {
    this._mounted = false;
    document.removeEventListener("keydown", this._onKey);
    document.removeEventListener("pointerdown", this._onPointer);
    if (SHEET.removeEventListener) SHEET.removeEventListener("change", this._onSheet);
    this._halt();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue || !this._mounted) return;
    if (name === "locale") {
      this._relabel();
      if (this._view === "preferences") this._loadPreferences();
    } else if (name === "open") {
      this._opened(newValue !== null);
    } else if (name === "token" && newValue && this.inbox && !this.inbox.signedOut) {
      this.inbox.setToken(newValue); // a fresh token from the app: same list, same stream position
    } else {
      this._start();
    }
  }

  /** Opens or closes the panel. */
  toggle() {
    if (this.hasAttribute("open")) this.hide({ focusBell: true });
    else this.show();
  }

  show() {
    this.setAttribute("open", "");
    this._panel.focus({ preventScroll: true });
  }

  hide({ focusBell = false } = {}) {
    this.removeAttribute("open");
    if (focusBell) this._bell.focus();
  }

  _opened(open) {
    this._bell.setAttribute("aria-expanded", String(open));
    if (open) {
      for (const toast of [...this._toasts.children]) toast.remove(); // the list shows them now
      for (const row of this._rows.values()) {
        const item = this.inbox && this.inbox.get(row.dataset.id);
        if (item && !item.seen_at) this._seen.observe(row);
      }
    }
    this.dispatchEvent(new CustomEvent("orchestrator-inbox-toggle", { detail: { open }, bubbles: true, composed: true }));
  }

  _start() {
    this._halt();
    const token = this.getAttribute("token");
    if (!token && !this._tokenProvider) return;
    const inbox = new OrchestratorInbox({ baseUrl: this.getAttribute("base-url") || "", token,
      tokenProvider: this._tokenProvider });
    this.inbox = inbox;
    const on = (type, handler) => inbox.addEventListener(type, (e) => { if (this.inbox === inbox) handler(e); });
    on("change", () => this._render());
    on("unread", () => this._render());
    on("connected", () => this._setNotice(""));
    on("item", (e) => this._announceNew(e.detail));
    on("error", (e) => this._failed(e.detail.action, e.detail.error));
    on("signedout", (e) => this._signedOut(e.detail.reason));
    inbox.start().catch(() => {});
  }

  _halt() {
    if (this.inbox) this.inbox.close();
    this.inbox = null;
    for (const row of this._rows.values()) row.remove();
    this._rows.clear();
    this._seen.disconnect();
    this._prefs.replaceChildren();
    this._showView("list", { focus: false });
    this._setNotice("");
    this._render();
  }

  // -- rendering -------------------------------------------------------------------------
  /** Sets every fixed string in the current language (and `lang` on what it shows). */
  _relabel() {
    const lang = this.locale;
    for (const el of [this._bell, this._panel, this._toasts, this._live]) el.setAttribute("lang", lang);
    this._heading.textContent = this.t("notifications");
    this._readAll.textContent = this.t("markAllRead");
    this._prefsToggle.textContent = this._view === "list" ? this.t("preferences") : this.t("back");
    this._close.querySelector(".sr-only").textContent = this.t("close");
    this._filter.setAttribute("aria-label", this.t("filterLabel"));
    this._filter.querySelector('[data-filter="all"]').textContent = this.t("filterAll");
    this._filter.querySelector('[data-filter="unread"]').textContent = this.t("filterUnread");
    this._more.textContent = this.t("loadMore");
    for (const row of this._rows.values()) row.remove();
    this._rows.clear(); // rebuilt in the new language
    this._seen.disconnect();
    this._render();
  }

  _render() {
    const inbox = this.inbox;
    const all = inbox ? inbox.list : [];
    const unread = inbox ? inbox.unread : 0;
    const onlyUnread = this._filterValue === "unread";
    const items = onlyUnread ? all.filter((i) => !i.read_at) : all;
    this._badge.hidden = unread === 0;
    this._badge.textContent = unread > 99 ? "99+" : String(unread);
    this._bell.setAttribute("aria-label", unread ? this.t("bellUnread", { n: unread }) : this.t("notifications"));
    this._bell.setAttribute("aria-expanded", String(this.hasAttribute("open")));
    for (const b of this._filter.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b.dataset.filter === this._filterValue));
    }
    this._readAll.hidden = !inbox || inbox.signedOut !== null || this._view !== "list";
    this._prefsToggle.hidden = !inbox || inbox.signedOut !== null;
    this._filter.hidden = !inbox || inbox.signedOut !== null;
    this._empty.hidden = items.length > 0;
    this._empty.textContent = onlyUnread ? this.t("emptyUnread") : this.t("empty");
    this._more.hidden = !(inbox && inbox.hasMore);
    const keep = new Set(items.map((i) => i.id));
    for (const [id, row] of this._rows) {
      if (!keep.has(id)) {
        this._seen.unobserve(row);
        row.remove();
        this._rows.delete(id);
      }
    }
    let previous = null;
    for (const item of items) {
      let row = this._rows.get(item.id);
      if (!row) {
        row = this._row(item);
        this._rows.set(item.id, row);
        if (!item.seen_at && this.hasAttribute("open")) this._seen.observe(row);
      }
      this._update(row, item);
      // Keep the order without moving rows that are in place (a moved row loses focus).
      const expected = previous ? previous.nextSibling : this._list.firstChild;
      if (expected !== row) this._list.insertBefore(row, expected);
      previous = row;
    }
  }

  _row(item) {
    const row = document.createElement("li");
    row.dataset.id = item.id;
    if (item.image_url && isImageUrl(item.image_url)) {
      const img = document.createElement("img");
      img.setAttribute("part", "image");
      img.src = item.image_url;
      img.loading = "lazy";
      img.referrerPolicy = "no-referrer";
      // Beside its title the picture adds nothing a screen reader should repeat: decorative.
      // An item with no title has its picture described by the body text it illustrates.
      img.alt = item.title ? "" : (item.body || "").slice(0, 120);
      row.append(img);
    }
    const text = document.createElement("div");
    text.className = "text";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    const state = document.createElement("span");
    state.className = "sr-only state";
    const title = document.createElement("span");
    title.className = "title";
    title.setAttribute("part", "title");
    title.textContent = item.title || "";
    const body = document.createElement("span");
    body.className = "body";
    body.setAttribute("part", "body");
    body.textContent = item.body || "";
    open.append(state, title, body);
    const time = document.createElement("time");
    time.setAttribute("part", "time");
    time.dateTime = item.created_at;
    time.textContent = new Date(item.created_at).toLocaleString(this.locale);
    const ackNote = document.createElement("span");
    ackNote.className = "needs-ack";
    text.append(open, ackNote, time);
    const actions = document.createElement("div");
    actions.className = "actions";
    const ack = document.createElement("button");
    ack.type = "button";
    ack.className = "ack";
    ack.setAttribute("part", "acknowledge");
    ack.textContent = this.t("acknowledge");
    ack.setAttribute("aria-label", this.t("acknowledgeItem", { title: item.title || item.body || "" }));
    ack.addEventListener("click", (e) => {
      e.stopPropagation();
      this._act("acknowledged", () => this.inbox.acknowledge(item.id));
    });
    const archive = document.createElement("button");
    archive.type = "button";
    archive.className = "archive";
    archive.setAttribute("part", "archive");
    archive.setAttribute("aria-label", this.t("archiveItem", { title: item.title || item.body || "" }));
    archive.title = this.t("archive");
    archive.textContent = "×";
    archive.addEventListener("click", (e) => {
      e.stopPropagation();
      this._act("archive", () => this.inbox.archive(item.id), () => this._panel.focus());
    });
    actions.append(ack, archive);
    row.append(text, actions);
    row.addEventListener("click", () => this._open(item.id));
    return row;
  }

  _update(row, item) {
    const unreadItem = !item.read_at;
    const needsAck = Boolean(item.requires_acknowledgement) && !item.acknowledged_at;
    row.classList.toggle("unread", unreadItem);
    row.setAttribute("part", unreadItem ? "item unread" : "item");
    row.querySelector(".state").textContent = unreadItem ? `${this.t("unread")}: ` : "";
    const ack = row.querySelector(".ack");
    ack.hidden = !needsAck;
    const note = row.querySelector(".needs-ack");
    note.hidden = !item.requires_acknowledgement;
    note.textContent = needsAck ? this.t("needsAcknowledgement") : this.t("acknowledged");
  }

  _setNotice(text, kind = "info") {
    this._notice.dataset.kind = kind;
    this._notice.textContent = text;
    this._notice.hidden = !text;
  }

  _say(text) {
    // A live region announces a change of its text: clear first so a repeat is heard too.
    this._live.textContent = "";
    setTimeout(() => { this._live.textContent = text; }, 50);
  }

  _announceNew(item) {
    const title = item.title || item.body || "";
    this._say(this.t("newItem", { title }));
    if (this.hasAttribute("toasts") && !this.hasAttribute("open")) this._toast(item);
  }

  _toast(item) {
    const toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("part", "toast");
    toast.dataset.id = item.id;
    const text = document.createElement("div");
    text.className = "text";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = item.title || "";
    const body = document.createElement("span");
    body.textContent = item.body || "";
    text.append(title, body);
    text.addEventListener("click", () => {
      toast.remove();
      this._open(item.id);
    });
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.setAttribute("aria-label", this.t("dismiss"));
    dismiss.textContent = "×";
    dismiss.addEventListener("click", () => toast.remove());
    toast.append(text, dismiss);
    this._toasts.append(toast);
    while (this._toasts.children.length > MAX_TOASTS) this._toasts.firstChild.remove();
    // Stays while hovered or focused, so it can be read and dismissed at one's own pace.
    const expire = () => {
      if (toast.matches(":hover, :focus-within")) setTimeout(expire, 1000);
      else toast.remove();
    };
    setTimeout(expire, TOAST_MS);
  }

  // -- actions ---------------------------------------------------------------------------
  /** Runs an action; a failure is shown (politely) and dispatched, never swallowed. */
  async _act(action, run, after) {
    if (!this.inbox) return undefined;
    try {
      const result = await run();
      if (this._notice.dataset.kind === "error") this._setNotice("");
      if (after) after(result);
      return result;
    } catch {
      return undefined; // the inbox's "error" event has shown and dispatched it
    }
  }

  _failed(action, error) {
    if (!this.isConnected) return;
    const key = ["token", "connect", "unread"].includes(action) ? "reconnecting"
      : ["load", "load-more"].includes(action) ? "errorLoad"
        : action === "preferences" ? "errorPreferences" : "errorAction";
    const message = this.t(key);
    if (action === "preferences" && this._prefsStatus) this._prefsStatus.textContent = message;
    else this._setNotice(message, "error");
    this._say(message);
    this.dispatchEvent(new CustomEvent("orchestrator-inbox-error", { bubbles: true, composed: true,
      detail: { action, error, message } }));
  }

  _signedOut(reason) {
    for (const toast of [...this._toasts.children]) toast.remove();
    this._prefs.replaceChildren();
    this._showView("list", { focus: false });
    this._setNotice(this.t("signedOut"));
    this._render();
    this.dispatchEvent(new CustomEvent("orchestrator-inbox-signed-out", { bubbles: true, composed: true,
      detail: { reason } }));
    if (reason === "revoked") {
      this.dispatchEvent(new CustomEvent("orchestrator-inbox-revoked", { bubbles: true, composed: true }));
    }
  }

  async _markAllRead() {
    const result = await this._act("read-all", () => this.inbox.readAll());
    if (!result) return;
    const m = result.requires_acknowledgement || 0;
    const text = m ? this.t("markedAllReadExceptAck", { n: result.read, m }) : this.t("markedAllRead", { n: result.read });
    this._say(text);
  }

  async _open(id) {
    const inbox = this.inbox;
    const item = inbox && inbox.get(id);
    if (!item) return;
    try {
      if (!item.read_at) await inbox.markRead(id);
      if (!item.clicked_at) await inbox.markClicked(id);
    } catch {
      // shown and dispatched by _failed; still let the user follow the link
    }
    const click = new CustomEvent("orchestrator-inbox-click", { detail: item, bubbles: true, composed: true,
      cancelable: true });
    if (this.dispatchEvent(click) && item.action_url && isHttps(item.action_url)) {
      window.location.assign(item.action_url);
    }
  }

  // -- preferences -----------------------------------------------------------------------
  _showView(view, { focus = true } = {}) {
    this._view = view;
    this._viewList.hidden = view !== "list";
    this._prefs.hidden = view !== "preferences";
    this._prefsToggle.textContent = view === "list" ? this.t("preferences") : this.t("back");
    this._readAll.hidden = view !== "list" || !this.inbox || this.inbox.signedOut !== null;
    if (view === "preferences") this._loadPreferences(focus);
    else if (focus) this._prefsToggle.focus();
  }

  async _loadPreferences(focus = false) {
    if (!this.inbox) return;
    const inbox = this.inbox;
    if (!this._prefs.childElementCount) {
      const loading = document.createElement("p");
      loading.textContent = this.t("loading");
      this._prefs.replaceChildren(loading);
    }
    const state = await this._act("preferences", () => inbox.getPreferences({ locale: this.locale }));
    if (!state || inbox !== this.inbox) return;
    this._renderPreferences(state);
    if (focus) this._prefs.querySelector("h3").focus();
  }

  _renderPreferences(state) {
    const uid = this._panel.id;
    const heading = document.createElement("h3");
    heading.tabIndex = -1;
    heading.style.cssText = "font-size:1em;margin:4px 0";
    heading.textContent = this.t("preferencesTitle");
    const intro = document.createElement("p");
    intro.textContent = this.t("preferencesIntro");
    const lockId = `${uid}-lock`;
    const lockNote = document.createElement("p");
    lockNote.id = lockId;
    lockNote.className = "desc";
    lockNote.textContent = this.t("lockedExplanation");
    const categories = state.categories || [];
    const channels = Array.isArray(state.channels) && state.channels.length
      ? state.channels.map((c) => ({ id: c.id, label: this._strings?.[`channel_${c.id}`] ?? c.label ?? this.t(`channel_${c.id}`) }))
      : Object.keys((categories[0] && categories[0].channels) || {}).map((id) => ({ id, label: this.t(`channel_${id}`) }));
    const table = document.createElement("table");
    table.setAttribute("part", "preferences-table");
    const caption = document.createElement("caption");
    caption.className = "sr-only";
    caption.textContent = this.t("preferencesTitle");
    const head = document.createElement("tr");
    const corner = document.createElement("th");
    corner.scope = "col";
    corner.textContent = this.t("category");
    head.append(corner);
    for (const channel of channels) {
      const th = document.createElement("th");
      th.scope = "col";
      th.id = `${uid}-ch-${channel.id}`;
      th.textContent = channel.label;
      head.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    for (const c of categories) {
      const label = c.label || humanise(c.category);
      const row = document.createElement("tr");
      row.dataset.category = c.category;
      const th = document.createElement("th");
      th.scope = "row";
      th.id = `${uid}-cat-${c.category}`;
      th.append(label);
      if (c.description) {
        const desc = document.createElement("span");
        desc.className = "desc";
        desc.textContent = c.description;
        th.append(desc);
      }
      if (c.locked) {
        const lock = document.createElement("span");
        lock.className = "lock";
        lock.textContent = this.t("locked");
        th.append(lock);
      }
      row.append(th);
      for (const channel of channels) {
        const td = document.createElement("td");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.name = `${c.category}.${channel.id}`;
        box.checked = Boolean(c.channels && c.channels[channel.id]);
        box.disabled = Boolean(c.locked);
        box.setAttribute("aria-label", this.t("channelOn", { category: label, channel: channel.label }));
        if (c.locked) box.setAttribute("aria-describedby", lockId);
        box.addEventListener("change", () => this._savePreference(c.category, channel.id, box));
        td.append(box);
        row.append(td);
      }
      tbody.append(row);
    }
    table.append(caption, thead, tbody);
    const status = document.createElement("p");
    status.setAttribute("role", "status");
    status.className = "desc";
    this._prefsStatus = status;
    const nodes = [heading, intro, table];
    if (categories.some((c) => c.locked)) nodes.push(lockNote);
    nodes.push(status);
    this._prefs.replaceChildren(...nodes);
  }

  async _savePreference(category, channel, box) {
    const on = box.checked;
    box.disabled = true;
    this._prefsStatus.textContent = "";
    const state = await this._act("preferences", () => this.inbox.setPreference(category, channel, on,
      { locale: this.locale }));
    if (!state) {
      box.checked = !on;
      box.disabled = false;
      return;
    }
    const name = box.name;
    this._renderPreferences(state);
    const again = this._prefs.querySelector(`input[name="${CSS.escape(name)}"]`);
    if (again) again.focus();
    this._prefsStatus.textContent = this.t("saved");
  }
}

if (typeof customElements !== "undefined" && !customElements.get("orchestrator-inbox")) {
  customElements.define("orchestrator-inbox", OrchestratorInboxElement);
}
