// Types for orchestrator-inbox.js (hand-written; the module itself has no build step).
// The wire shapes follow docs/API.md "In-app client (user token)".

/** One inbox item, as GET /v1/inbox lists it and the stream's `message` and `item` events carry it. */
export interface InboxItem {
  id: string;
  message_id: string;
  category: string;
  /** The category's human label in the client's locale. */
  category_label: string;
  title: string;
  body: string;
  action_url: string | null;
  image_url: string | null;
  created_at: string;
  seen_at: string | null;
  read_at: string | null;
  clicked_at: string | null;
  acknowledged_at: string | null;
  /** Set when the item was archived (on any device): it leaves the list. */
  archived_at: string | null;
  /** A legal notice that needs a tracked acknowledgement: "Mark all read" leaves it unread. */
  requires_acknowledgement: boolean;
  /** Over the in-app cap: listed and counted, never popped up. */
  quiet: boolean;
}

export type Engagement = "seen" | "read" | "clicked" | "acknowledged";
export const ENGAGEMENTS: readonly Engagement[];

export type SignOutReason = "revoked" | "expired" | "unauthorized";
export const SIGN_OUT_REASONS: readonly SignOutReason[];

/** What a tokenProvider answers: the token, or the token with its expiry (ISO time, ms or Date). */
export type TokenAnswer = string | { token: string; expires_at?: string | number | Date | null };
/** Called before the token expires and after a 401 `token_expired`; retried with backoff. */
export type TokenProvider = () => TokenAnswer | Promise<TokenAnswer>;

export type Channel = "in_app" | "push" | "sms" | "email";

export interface CategoryPreferences {
  category: string;
  label: string;
  description: string;
  locked: boolean;
  unsubscribable: boolean;
  channels: Record<Channel, boolean>;
}

export interface Preferences {
  user_id: string;
  policy_version: string;
  locale: string;
  channels: { id: Channel; label: string }[];
  categories: CategoryPreferences[];
}

export type PreferenceChanges = Record<string, Partial<Record<Channel, boolean | null>>>;

export interface EngagementResult {
  id: string;
  event: Engagement;
  outcome: "applied" | "ignored" | "duplicate";
}

export interface ReadAllResult {
  read: number;
  requires_acknowledgement: number;
}

/** An HTTP error from the service, with the JSON error's code and field. */
export class InboxError extends Error {
  readonly status: number;
  /** e.g. "token_expired", "token_revoked", "unauthorized", "not_found", "validation_error" */
  readonly code: string | undefined;
  readonly field: string | undefined;
  constructor(status: number, error?: { code?: string; field?: string; message?: string });
}

export interface OrchestratorInboxOptions {
  baseUrl?: string;
  token?: string | null;
  expiresAt?: string | number | Date | null;
  tokenProvider?: TokenProvider | null;
  pageSize?: number;
}

export interface OrchestratorInboxEventMap {
  change: CustomEvent<{ items: InboxItem[]; unread: number }>;
  item: CustomEvent<InboxItem>;
  unread: CustomEvent<number>;
  connected: CustomEvent<undefined>;
  disconnected: CustomEvent<undefined>;
  token: CustomEvent<{ expiresAt: number | null }>;
  signedout: CustomEvent<{ reason: SignOutReason }>;
  error: CustomEvent<{ error: unknown; action: string }>;
}

/** The user's inbox without the UI: pages, the live stream, engagement and preferences. */
export class OrchestratorInbox extends EventTarget {
  constructor(options: OrchestratorInboxOptions);
  baseUrl: string;
  token: string | null;
  /** Expiry of the current token, in ms since the epoch. */
  expiresAt: number | null;
  tokenProvider: TokenProvider | null;
  pageSize: number;
  /** The server's unread total, as last sent. */
  readonly unread: number;
  readonly connected: boolean;
  /** Why the client signed out, or null while signed in. */
  readonly signedOut: SignOutReason | null;
  readonly revoked: boolean;
  readonly list: InboxItem[];
  readonly hasMore: boolean;
  get(id: string): InboxItem | undefined;
  start(): Promise<void>;
  setToken(token: string, expiresAt?: string | number | Date | null): void;
  refreshToken(): Promise<void>;
  load(options?: { more?: boolean }): Promise<InboxItem[]>;
  loadMore(): Promise<InboxItem[]>;
  connect(): void;
  disconnect(): void;
  reconnect(): void;
  close(): void;
  signOut(reason?: SignOutReason): void;
  report(id: string, event: Engagement): Promise<EngagementResult>;
  markSeen(id: string): Promise<EngagementResult>;
  markRead(id: string): Promise<EngagementResult>;
  markClicked(id: string): Promise<EngagementResult>;
  acknowledge(id: string): Promise<EngagementResult>;
  archive(id: string): Promise<{ id: string; archived: true }>;
  readAll(): Promise<ReadAllResult>;
  getPreferences(options?: { locale?: string }): Promise<Preferences>;
  updatePreferences(changes: PreferenceChanges, options?: { locale?: string }): Promise<Preferences>;
  setPreference(category: string, channel: Channel, on: boolean, options?: { locale?: string }): Promise<Preferences>;

  addEventListener<K extends keyof OrchestratorInboxEventMap>(
    type: K, listener: (this: OrchestratorInbox, ev: OrchestratorInboxEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof OrchestratorInboxEventMap>(
    type: K, listener: (this: OrchestratorInbox, ev: OrchestratorInboxEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

/** Every visible string of the component, per locale ("en", "ko"). */
export const STRINGS: Record<string, Record<string, string>>;

/** Events the element dispatches (they bubble and cross the shadow boundary). */
export interface OrchestratorInboxElementEventMap {
  /** Cancelable: cancel it to keep the component from following the item's https action_url. */
  "orchestrator-inbox-click": CustomEvent<InboxItem>;
  /** The list and badge were cleared: the token was revoked, expired without a refresh, or refused. */
  "orchestrator-inbox-signed-out": CustomEvent<{ reason: SignOutReason }>;
  "orchestrator-inbox-error": CustomEvent<{ error: unknown; action: string; message: string }>;
  "orchestrator-inbox-toggle": CustomEvent<{ open: boolean }>;
  /** Kept for older pages; prefer orchestrator-inbox-signed-out. */
  "orchestrator-inbox-revoked": CustomEvent<undefined>;
}

/**
 * `<orchestrator-inbox base-url="https://notify.example.com" token="ut_…" locale="ko" toasts open>`
 *
 * Attributes: `base-url`, `token`, `locale`, `toasts`, `open`. Style with `--oi-*` custom
 * properties and `::part(...)`.
 */
export class OrchestratorInboxElement extends HTMLElement {
  static readonly observedAttributes: string[];
  /** Supplies fresh tokens: `async () => token | {token, expires_at}`. */
  tokenProvider: TokenProvider | null;
  /** Overrides of some strings (keys of STRINGS.en) for this element. */
  strings: Partial<Record<string, string>> | null;
  /** The OrchestratorInbox the element is built on (null before it starts). */
  readonly inbox: OrchestratorInbox | null;
  /** The locale in use: the `locale` attribute, else the page's lang, else "en". */
  readonly locale: string;
  t(key: string, values?: Record<string, string | number>): string;
  toggle(): void;
  show(): void;
  hide(options?: { focusBell?: boolean }): void;

  addEventListener<K extends keyof OrchestratorInboxElementEventMap>(
    type: K, listener: (this: OrchestratorInboxElement, ev: OrchestratorInboxElementEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener<K extends keyof HTMLElementEventMap>(
    type: K, listener: (this: OrchestratorInboxElement, ev: HTMLElementEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof OrchestratorInboxElementEventMap>(
    type: K, listener: (this: OrchestratorInboxElement, ev: OrchestratorInboxElementEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions): void;
  removeEventListener<K extends keyof HTMLElementEventMap>(
    type: K, listener: (this: OrchestratorInboxElement, ev: HTMLElementEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "orchestrator-inbox": OrchestratorInboxElement;
  }
  interface DocumentEventMap extends OrchestratorInboxElementEventMap {}
}
