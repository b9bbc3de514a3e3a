"""The in-app live stream (Server-Sent Events), served natively on the event loop: an idle
stream is a coroutine waiting on an event — no thread, a few KB — so thousands of open
streams leave the thread pool that serves the API untouched.

A stream never polls the database. It reads when the in-app bus wakes it (an item became
visible, engagement changed the unread count, a token was revoked), plus once when it opens.
Each item is one SSE event whose id is the item's position in the user's timeline; a client
that reconnects sends it back as `Last-Event-ID` and gets everything after it (the browser's
EventSource does this by itself). Showing an item on a stream is its delivery.

When an item changes state on any device (seen, read, clicked, acknowledged, archived), the
route that changed it names it on the bus and every stream of the user sends it again as an
`item` event (no id: it does not move the resume position), then `unread` if the total moved.
At the token's expiry the stream sends `expired` and ends; on a revocation, `revoked`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from providers.base import AttemptStatus, Receipt

from .. import metrics
from ..domain.statuses import TokenState
from ..errors import ApiError, DomainError, ErrorCode, error_body, http_status
from ..lifecycle.receipts import ingest_known
from . import cors, inbox, locales, tokens
from .bus import Notice, Subscriber

log = logging.getLogger("orchestrator.inapp.stream")

PATH = "/v1/inbox/stream"
INAPP_SOURCE = "in_app_client"
RETRY_MS = 2000
SHOWN_MEMORY = 2000  # ids this stream already sent, to drop repeats of the resume overlap
EXPIRY_SLACK = 0.05  # seconds past the token's expiry before the stream checks it
REFRESH_CHUNK = 100  # users per presence-refresh transaction


class StreamHub:
    """Serves every stream of this process and keeps their presence fresh."""

    def __init__(self, state) -> None:
        self.state = state
        self.settings = state.settings
        self._open: dict[str, Subscriber] = {}     # connection id -> subscriber
        self._conn_users: dict[str, str] = {}      # connection id -> user id (presence)
        self._per_token: dict[str, int] = {}
        self._per_user: dict[str, int] = {}
        self._closing: asyncio.Event | None = None
        # Items a stream of this process is marking as shown right now: a user's other
        # streams, woken by the same notice, need not take the message lock to learn that.
        self._marking: set[str] = set()
        self._marking_lock = threading.Lock()
        self._refresher: asyncio.Task | None = None

    # -- lifecycle (ASGI lifespan) ---------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        self.state.bus.attach(loop)
        self._refresher = loop.create_task(self._refresh_presence())

    def close_all(self) -> None:
        """Ends every open stream now (shutdown): clients reconnect to another process."""
        if self._closing is not None:
            self._closing.set()
        for sub in list(self._open.values()):
            sub.wake.set()
        if self._refresher is not None:
            self._refresher.cancel()

    @property
    def open_count(self) -> int:
        return len(self._open)

    async def _refresh_presence(self) -> None:
        from .presence import REFRESH_EVERY

        while True:
            await asyncio.sleep(REFRESH_EVERY.total_seconds())
            conns = dict(self._conn_users)
            if not conns:
                continue
            try:
                await asyncio.to_thread(self._refresh_sync, conns)
            except Exception:  # noqa: BLE001 - try again next tick
                log.warning("presence refresh failed", exc_info=True)

    def _refresh_sync(self, conns: dict[str, str]) -> None:
        # In small transactions: one long write would hold SQLite's writer lock against the
        # API for as long as it takes to touch every connected user.
        items = list(conns.items())
        now = self.state.clock()
        for i in range(0, len(items), REFRESH_CHUNK):
            with self.state.db.session() as session:
                self.state.presence.refresh_connections(session, dict(items[i:i + REFRESH_CHUNK]), now)

    # -- one request -------------------------------------------------------------------
    async def __call__(self, scope: dict, receive, send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cors_headers = cors.headers(headers.get("origin"), self.settings.inapp_cors_origins,
                                    preflight=scope["method"] == "OPTIONS")
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, None, cors_headers)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _error(send, ApiError(405, ErrorCode.METHOD_NOT_ALLOWED,
                                        "the stream is read with GET", field="method"), cors_headers)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            since = _resume_position(headers, query)
            wanted = locales.wanted((query.get("locale") or [None])[0], headers.get("accept-language"))
            ident = await asyncio.to_thread(self._identify, headers.get("authorization"),
                                            (query.get("token") or [None])[0])
            self._check_limits(ident)
        except DomainError as exc:
            await _error(send, exc, cors_headers)
            return
        await self._serve(ident, since, wanted, receive, send, cors_headers)

    def _identify(self, authorization: str | None, query_token: str | None) -> tokens.TokenIdentity:
        with self.state.db.session() as session:
            return tokens.identify(session, tokens.token_from(authorization, query_token), self.state.clock())

    def _check_limits(self, ident: tokens.TokenIdentity) -> None:
        s = self.settings
        if len(self._open) >= s.max_streams:
            raise ApiError(503, ErrorCode.UNAVAILABLE,
                           f"this server holds its maximum of {s.max_streams} streams; retry on another "
                           "process or later", field="stream")
        if self._per_token.get(ident.token_hash, 0) >= s.streams_per_token:
            raise ApiError(429, ErrorCode.TOO_MANY_STREAMS,
                           f"this token already has {s.streams_per_token} open streams (STREAMS_PER_TOKEN)",
                           field="token")
        held = max(self._per_user.get(ident.user_id, 0),
                   self.state.presence.connection_count(ident.user_id, self.state.clock()))
        if held >= s.streams_per_user:
            raise ApiError(429, ErrorCode.TOO_MANY_STREAMS,
                           f"this user already has {s.streams_per_user} open streams (STREAMS_PER_USER)",
                           field="user")

    async def _serve(self, ident: tokens.TokenIdentity, since: inbox.Position | None, wanted: list[str],
                     receive, send, cors_headers: dict[str, str]) -> None:
        user_id = ident.user_id
        sub = self.state.bus.subscribe(user_id, ident.token_id)
        self._per_token[ident.token_hash] = self._per_token.get(ident.token_hash, 0) + 1
        self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        conn_id = None
        disconnected = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, disconnected))
        metrics.OPEN_STREAMS.inc()
        try:
            conn_id = await asyncio.to_thread(self._open_connection, user_id)
            self._open[conn_id] = sub
            self._conn_users[conn_id] = user_id
            await send({"type": "http.response.start", "status": 200, "headers": _encode({
                "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                "x-accel-buffering": "no", **cors_headers})})
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(),
                        "more_body": True})
            await self._loop(ident, sub, since, wanted, send, disconnected)
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            metrics.OPEN_STREAMS.dec()
            self.state.bus.unsubscribe(sub)
            self._dec(self._per_token, ident.token_hash)
            self._dec(self._per_user, user_id)
            if conn_id is not None:
                self._open.pop(conn_id, None)
                self._conn_users.pop(conn_id, None)
                try:
                    await asyncio.to_thread(self.state.presence.close_connection, user_id, conn_id)
                except Exception:  # noqa: BLE001 - the connection ages out of presence anyway
                    log.warning("presence close failed", exc_info=True)
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # noqa: BLE001 - already closed
                pass

    @staticmethod
    def _dec(counts: dict[str, int], key: str) -> None:
        counts[key] -= 1
        if counts[key] <= 0:
            del counts[key]

    def _open_connection(self, user_id: str) -> str:
        now = self.state.clock()
        with self.state.db.session() as session:
            conn_id = self.state.presence.open_connection(session, user_id, now)
        # Opening the app is a session: items held for the user's next session are due now.
        self.state.dispatcher.release_held_in_app(user_id)
        return conn_id

    async def _loop(self, ident: tokens.TokenIdentity, sub: Subscriber, since: inbox.Position | None,
                    wanted: list[str], send, disconnected: asyncio.Event) -> None:
        shown: OrderedDict[str, None] = OrderedDict()
        # Without Last-Event-ID, the stream shows what no stream has shown yet plus whatever
        # becomes visible from now on, even if another of the user's devices shows it first.
        cursor = since or inbox.Position(self.state.clock(), "")
        last_unread: int | None = None
        keepalive = self.settings.stream_keepalive_seconds
        assert self._closing is not None
        read = True
        while not (disconnected.is_set() or self._closing.is_set()):
            sub.wake.clear()
            notices, sub.notices = sub.notices, set()
            changed, sub.items = sub.items, set()
            if Notice.REVOKE in notices or self.state.clock() >= ident.expires_at:
                token_state = await asyncio.to_thread(self._token_state, ident.token_hash)
                if token_state is not TokenState.VALID:
                    kind = "expired" if token_state is TokenState.EXPIRED else "revoked"
                    await send(_chunk(f"event: {kind}\ndata: {{}}\n\n"))
                    return
            if read or changed or notices & {Notice.ITEMS, Notice.UNREAD}:
                rows, changed_rows, unread, label = await asyncio.to_thread(
                    self._read, ident.user_id, cursor, sorted(changed), wanted)
                chunks = []
                sent_now = set()
                for row in rows:
                    position = inbox.position(row)
                    if position.at > cursor.at:
                        cursor = inbox.Position(position.at, position.id)
                    if row.id in shown:
                        continue
                    shown[row.id] = None
                    sent_now.add(row.id)
                    if len(shown) > SHOWN_MEMORY:
                        shown.popitem(last=False)
                    chunks.append(f"id: {position.encode()}\nevent: message\ndata: "
                                  f"{json.dumps(inbox.client_entry(row, label(row.category)))}\n\n")
                for row in changed_rows:  # already shown somewhere: its new state, no id
                    if row.id not in sent_now:
                        entry = inbox.client_entry(row, label(row.category))
                        chunks.append(f"event: item\ndata: {json.dumps(entry)}\n\n")
                if unread != last_unread:
                    chunks.append(f"event: unread\ndata: {json.dumps({'unread': unread})}\n\n")
                    last_unread = unread
                if chunks:
                    await send(_chunk("".join(chunks)))
                read = False
            started = time.monotonic()
            # Wake at the token's expiry, not at the next keep-alive, to say `expired` on time.
            to_expiry = (ident.expires_at - self.state.clock()).total_seconds() + EXPIRY_SLACK
            wait = max(0.0, min(keepalive, to_expiry))
            woke = await _wait_any((sub.wake, disconnected, self._closing), wait)
            if not woke and wait >= keepalive and time.monotonic() - started >= keepalive - 0.01:
                await send(_chunk(": keep-alive\n\n"))

    def _token_state(self, token_hash: str) -> TokenState:
        with self.state.db.session() as session:
            return tokens.state_of(session, token_hash, self.state.clock())

    def _read(self, user_id: str, cursor: inbox.Position, changed: list[str], wanted: list[str]
              ) -> tuple[list[Any], list[Any], int, Callable[[str], str]]:
        """Items to show, changed items to send again, the unread total and the category
        labels in the client's locale; items no stream had shown yet become delivered in the
        same transaction (a plan watching `delivered` moves on)."""
        now = self.state.clock()
        labels = self.state.policies.active().labels
        locale = labels.locale_for(wanted)
        with self.state.db.session() as session:
            rows = inbox.for_stream(session, user_id, cursor)
            changed_rows = inbox.changed_items(session, user_id, changed) if changed else []
            mine = self._claim_marks([row.id for row in rows if row.status == AttemptStatus.SENT])
            try:
                for row in rows:
                    if row.id in mine:
                        mark_shown(session, row.id, row.message_id, now)
                unread = inbox.unread_count(session, user_id)
            finally:
                with self._marking_lock:
                    self._marking.difference_update(mine)
        return rows, changed_rows, unread, lambda category: labels.category(category, locale)

    def _claim_marks(self, ids: list[str]) -> set[str]:
        with self._marking_lock:
            mine = {i for i in ids if i not in self._marking}
            self._marking.update(mine)
        return mine


def mark_shown(session, attempt_id: str, message_id: str, now: datetime) -> None:
    """Showing an item on a stream is its delivery (what the plan releases is announced on
    commit)."""
    receipt = Receipt(provider="inapp", provider_message_id=attempt_id, status=AttemptStatus.DELIVERED,
                      event_id=f"{attempt_id}:streamed", occurred_at=now, raw={"event": "streamed"},
                      message_id=message_id)
    ingest_known(session, INAPP_SOURCE, receipt, attempt_id, message_id, now)


def _resume_position(headers: dict[str, str], query: dict[str, list[str]]) -> inbox.Position | None:
    raw = headers.get("last-event-id") or (query.get("last_event_id") or [None])[0]
    if not raw:
        return None
    try:
        return inbox.Position.decode(raw.strip())
    except inbox.CursorError:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       "Last-Event-ID: not an event id this stream sent", field="Last-Event-ID") from None


async def _watch_disconnect(receive, disconnected: asyncio.Event) -> None:
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
    finally:
        disconnected.set()


async def _wait_any(events: tuple[asyncio.Event, ...], timeout: float) -> bool:
    """True when one of the events was set, False on timeout."""
    if any(e.is_set() for e in events):
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    return bool(done)


def _chunk(text: str) -> dict:
    return {"type": "http.response.body", "body": text.encode(), "more_body": True}


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _respond(send, status: int, body: dict | None, headers: dict[str, str]) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    extra = {"content-type": "application/json"} if body is not None else {}
    await send({"type": "http.response.start", "status": status,
                "headers": _encode({**extra, "content-length": str(len(payload)), **headers})})
    await send({"type": "http.response.body", "body": payload})


async def _error(send, exc: DomainError, headers: dict[str, str]) -> None:
    await _respond(send, http_status(exc), error_body(exc), headers)
