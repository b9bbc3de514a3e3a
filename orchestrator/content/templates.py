"""Templates: stored and versioned (every change is a new immutable version, audited),
compiled once per process and rendered per message. All queries of `templates` and
`template_versions` are here.

`resolve(db, req, max_content_chars)` is the accept path's one call: it turns a request's
`template` (or inline `content` with per-channel overrides) into the resolved per-channel
content the message stores and the routing facts are computed on."""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from providers.base import Channel

from ..audit import log as audit
from ..domain.errors import Conflict, ErrorCode, Invalid, NotFound
from ..schemas import (
    ChannelOverrides,
    Content,
    EmailOverride,
    InAppOverride,
    PushOverride,
    SendRequest,
    SmsOverride,
    check_link,
)
from ..storage.db import Database
from ..storage.models import Recipient, Template, TemplateVersion
from .channels import for_channel
from .compiled import REQUIRED_FIELDS, URL_FIELDS, CompiledVersion, SourceError, compile_version
from .render import RenderError
from .schemas import TemplateCreate, TemplateVersionIn

LATEST_TTL_SECONDS = 5.0      # how long "the latest version" is reused before asking again
MAX_CACHED_VERSIONS = 1000

ACTION_CREATE = "template.create"
ACTION_VERSION = "template.version"

_OVERRIDE_MODELS = {Channel.SMS: SmsOverride, Channel.PUSH: PushOverride, Channel.EMAIL: EmailOverride,
                    Channel.IN_APP: InAppOverride}


# -- cache ------------------------------------------------------------------------------------


class TemplateCache:
    """Compiled versions (immutable, so kept until evicted) and each template's latest
    version number (reused for LATEST_TTL_SECONDS; a write in this process forgets it at
    once, other processes see it within the TTL)."""

    def __init__(self, ttl: float = LATEST_TTL_SECONDS, clock=time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._versions: OrderedDict[tuple[str, int], CompiledVersion] = OrderedDict()
        self._latest: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def latest(self, template_id: str) -> int | None:
        hit = self._latest.get(template_id)
        return hit[0] if hit and hit[1] > self.clock() else None

    def put_latest(self, template_id: str, version: int) -> None:
        self._latest[template_id] = (version, self.clock() + self.ttl)

    def forget(self, template_id: str) -> None:
        self._latest.pop(template_id, None)

    def version(self, key: tuple[str, int]) -> CompiledVersion | None:
        return self._versions.get(key)

    def put_version(self, compiled: CompiledVersion) -> None:
        with self._lock:
            self._versions[(compiled.template_id, compiled.version)] = compiled
            while len(self._versions) > MAX_CACHED_VERSIONS:
                self._versions.popitem(last=False)


_CACHES: weakref.WeakKeyDictionary[Database, TemplateCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(db: Database) -> TemplateCache:
    cache = _CACHES.get(db)
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.setdefault(db, TemplateCache())
    return cache


# -- reading ----------------------------------------------------------------------------------


def _unknown(template_id: str, field: str = "id") -> NotFound:
    return NotFound(ErrorCode.NOT_FOUND, f"{field}: no template '{template_id}'", field=field)


def get_row(session: Session, template_id: str) -> Template | None:
    return session.get(Template, template_id)


def get_version_row(session: Session, template_id: str, version: int) -> TemplateVersion | None:
    return session.get(TemplateVersion, (template_id, version))


def list_rows(session: Session, limit: int, after: str | None) -> list[Template]:
    query = select(Template).order_by(Template.id).limit(limit)
    if after:
        query = query.where(Template.id > after)
    return list(session.scalars(query))


def list_versions(session: Session, template_id: str) -> list[TemplateVersion]:
    return list(session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template_id)
                                .order_by(TemplateVersion.version)))


def compiled(db: Database, session: Session | None, template_id: str, version: int | None,
             *, field_prefix: str = "template.") -> CompiledVersion:
    """The compiled version (`None` = the latest), from the cache when it can be."""
    cache = cache_for(db)
    if version is None:
        version = cache.latest(template_id)
    hit = cache.version((template_id, version)) if version is not None else None
    if hit is not None:
        return hit

    def load(s: Session) -> CompiledVersion:
        nonlocal version
        if version is None:
            latest = s.scalar(select(Template.latest_version).where(Template.id == template_id))
            if latest is None:
                raise Invalid(ErrorCode.UNKNOWN_TEMPLATE, f"{field_prefix}id: no template '{template_id}'",
                              field=f"{field_prefix}id")
            version = latest
            cache.put_latest(template_id, latest)
            found = cache.version((template_id, version))
            if found is not None:
                return found
        row = get_version_row(s, template_id, version)
        if row is None:
            exists = s.get(Template, template_id) is not None
            field = f"{field_prefix}version" if exists else f"{field_prefix}id"
            what = f"template '{template_id}' has no version {version}" if exists else f"no template '{template_id}'"
            raise Invalid(ErrorCode.UNKNOWN_TEMPLATE, f"{field}: {what}", field=field)
        result = compile_version(row.template_id, row.version, row.default_locale, row.definition)
        cache.put_version(result)
        return result

    if session is not None:
        return load(session)
    with db.session() as s:
        return load(s)


# -- writing ----------------------------------------------------------------------------------


def _compile_for_save(template_id: str, version: int, body: TemplateVersionIn) -> CompiledVersion:
    """Compiled, and dry-run: a source whose work alone is over the render limits is refused
    now rather than at every send."""
    try:
        compiled_ = compile_version(template_id, version, body.default_locale, body.definition())
        compiled_.dry_run()
        return compiled_
    except SourceError as exc:
        raise Invalid(ErrorCode.INVALID_TEMPLATE, f"{exc.field}: {exc.message}", field=exc.field) from None


def create(db: Database, session: Session, body: TemplateCreate, actor: str, now: datetime) -> TemplateVersion:
    compiled_ = _compile_for_save(body.id, 1, body)
    if session.get(Template, body.id) is not None:
        raise Conflict(ErrorCode.TEMPLATE_EXISTS,
                       f"id: template '{body.id}' exists; post a new version to /v1/templates/{body.id}/versions",
                       field="id")
    session.add(Template(id=body.id, latest_version=1, created_by=actor, created_at=now, updated_at=now))
    row = _add_version(session, compiled_, body, actor, now)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(ErrorCode.TEMPLATE_EXISTS, f"id: template '{body.id}' exists", field="id") from None
    audit.append(session, actor=actor, action=ACTION_CREATE, subject=f"template:{body.id}",
                 detail=_audit_detail(row), reason=body.reason, now=now)
    cache_for(db).forget(body.id)
    return row


def add_version(db: Database, session: Session, template_id: str, body: TemplateVersionIn, actor: str,
                now: datetime) -> TemplateVersion:
    # Locking the template row serializes concurrent new versions of one template.
    template = session.scalar(select(Template).where(Template.id == template_id).with_for_update())
    if template is None:
        raise _unknown(template_id)
    version = template.latest_version + 1
    compiled_ = _compile_for_save(template_id, version, body)
    template.latest_version, template.updated_at = version, now
    row = _add_version(session, compiled_, body, actor, now)
    try:
        session.flush()
    except IntegrityError:  # another writer added this version number first (SQLite has no row lock)
        raise Conflict(ErrorCode.VERSION_EXISTS,
                       f"version: {template_id} version {version} was just added by another request; retry",
                       field="version") from None
    audit.append(session, actor=actor, action=ACTION_VERSION, subject=f"template:{template_id}",
                 detail=_audit_detail(row), reason=body.reason, now=now)
    cache_for(db).forget(template_id)
    return row


def _add_version(session: Session, compiled_: CompiledVersion, body: TemplateVersionIn, actor: str,
                 now: datetime) -> TemplateVersion:
    row = TemplateVersion(template_id=compiled_.template_id, version=compiled_.version,
                          default_locale=body.default_locale,
                          definition=body.definition(), variables=sorted(compiled_.variables), author=actor,
                          reason=body.reason, created_at=now)
    session.add(row)
    return row


def _audit_detail(row: TemplateVersion) -> dict[str, Any]:
    definition = row.definition
    return {"version": row.version, "default_locale": row.default_locale,
            "channels": sorted(definition.get("channels", {})),
            "locales": sorted([row.default_locale, *definition.get("translations", {})]),
            "variables": row.variables}


def version_dict(row: TemplateVersion) -> dict[str, Any]:
    return {"id": row.template_id, "version": row.version, "default_locale": row.default_locale,
            "variables": row.variables, **row.definition, "author": row.author, "reason": row.reason,
            "created_at": row.created_at.isoformat()}


def template_dict(template: Template, latest: TemplateVersion | None = None) -> dict[str, Any]:
    out = {"id": template.id, "latest_version": template.latest_version, "created_by": template.created_by,
           "created_at": template.created_at.isoformat(), "updated_at": template.updated_at.isoformat()}
    if latest is not None:
        out["latest"] = version_dict(latest)
    return out


# -- rendering --------------------------------------------------------------------------------


def check_variables(version: CompiledVersion, given: dict[str, Any], prefix: str = "template.variables") -> None:
    missing = sorted(version.variables - set(given))
    if missing:
        raise Invalid(ErrorCode.MISSING_VARIABLE,
                      f"{prefix}.{missing[0]}: template '{version.template_id}' version {version.version} "
                      f"needs it (needs: {', '.join(sorted(version.variables)) or 'none'})",
                      field=f"{prefix}.{missing[0]}")
    extra = sorted(set(given) - version.variables)
    if extra:
        raise Invalid(ErrorCode.UNEXPECTED_VARIABLE,
                      f"{prefix}.{extra[0]}: template '{version.template_id}' version {version.version} does "
                      f"not use it (uses: {', '.join(sorted(version.variables)) or 'none'})",
                      field=f"{prefix}.{extra[0]}")


def render(version: CompiledVersion, locale: str | None, variables: dict[str, Any], *,
           reply_to: str | None = None, link_schemes: tuple[str, ...] = (), prefix: str = "template."):
    """Rendered per-channel content, or Invalid naming the variable or field at fault."""
    check_variables(version, variables, f"{prefix}variables")
    try:
        rendered = version.render(locale, variables, reply_to)
    except RenderError as exc:
        field = f"{prefix}variables.{exc.variable}" if exc.variable else f"{prefix}variables"
        raise Invalid(ErrorCode.RENDER_FAILED, f"{field}: {exc.message}", field=field) from None
    for channel, fields in rendered.channels.items():
        for name in REQUIRED_FIELDS.get(channel, ()):
            if not fields.get(name, "").strip():
                field = f"{prefix}channels.{channel}.{name}"
                raise Invalid(ErrorCode.RENDER_FAILED,
                              f"{field}: renders empty with these variables; a {channel} message needs it",
                              field=field)
        for name in URL_FIELDS:
            value = fields.get(name)
            if value:
                schemes = ("https",) if name == "image_url" else ("https", *link_schemes)
                try:
                    check_link(value, schemes)
                except ValueError as exc:
                    field = f"{prefix}channels.{channel}.{name}"
                    raise Invalid(ErrorCode.INVALID_URL, f"{field}: rendered '{value[:100]}': "
                                  f"{str(exc).split(': ', 1)[-1]}", field=field) from None
    return rendered


_LOCALE = select(Recipient.locale).where(Recipient.user_id == bindparam("user_id"))


def _recipient_locale(db: Database, user_id: str) -> str | None:
    """One primary-key read on a plain connection (a session costs several times more)."""
    with db.engine.connect() as conn:
        return conn.execute(_LOCALE, {"user_id": user_id}).scalar()


def resolve(db: Database, req: SendRequest, max_content_chars: int) -> SendRequest:
    """The accept path's hook. Plain inline content passes through untouched (no cost);
    a template is rendered for the recipient's locale (per-message override first) into a
    Content whose `channels` holds every rendered variant; either way, every channel's text
    is checked against `max_content_chars`."""
    if (req.content is None) == (req.template is None):
        field = "content" if req.content is None else "template"
        raise Invalid(ErrorCode.VALIDATION_ERROR,
                      f"{field}: give exactly one of content (inline) and template", field=field)
    if req.content is not None:
        if req.content.channels is not None:
            _check_sizes(req.content, max_content_chars)
        return req
    ref = req.template
    version = compiled(db, None, ref.id, ref.version)
    locale = req.recipient.locale
    if locale is None and len(version.sources) > 1:  # only a translated template needs the profile's
        locale = _recipient_locale(db, req.recipient.user_id)
    rendered = render(version, locale, ref.variables, reply_to=ref.reply_to, link_schemes=ref._link_schemes)
    for channel, fields in rendered.channels.items():
        size = sum(len(fields.get(k, "")) for k in ("title", "subject", "body", "text"))
        if size > max_content_chars:
            raise Invalid(ErrorCode.CONTENT_TOO_LARGE,
                          f"template: the rendered {channel} title and body are {size} characters; "
                          f"the limit is {max_content_chars}", field="template")
    content = _content(rendered)
    content._source = {"id": version.template_id, "version": version.version, "locale": rendered.locale}
    return req.model_copy(update={"content": content})


def _content(rendered) -> Content:
    """A Content built from rendered text (already checked, so not validated again)."""
    overrides = {ch: _OVERRIDE_MODELS[ch].model_construct(**fields) for ch, fields in rendered.channels.items()}
    return Content.model_construct(
        title=rendered.title, body=rendered.body, data={},
        image_url=None, action_url=rendered.action_url or None, html=None,
        channels=ChannelOverrides.model_construct(**overrides))


def _check_sizes(content: Content, max_content_chars: int) -> None:
    stored = stored_content(content)
    for channel in (stored.get("channels") or {}):
        c = for_channel(stored, channel)
        size = len(c["title"] or "") + len(c["body"] or "")
        if size > max_content_chars:
            field = f"content.channels.{channel}"
            raise Invalid(ErrorCode.CONTENT_TOO_LARGE,
                          f"{field}: the {channel} title and body are {size} characters; "
                          f"the limit is {max_content_chars}", field=field)


def stored_content(content: Content) -> dict[str, Any]:
    """What `messages.content` stores (content/channels.py describes the shape)."""
    out = content.model_dump(exclude_none=True)
    if content._source:
        out["template"] = content._source
    return out



def content_from_stored(stored: dict[str, Any]) -> Content:
    """The inverse of `stored_content`: the Content a message was accepted with (a template
    already rendered, per-channel variants included), not validated again (a scheduled
    message coming due must not be stranded by a setting changed since)."""
    fields = {k: v for k, v in stored.items() if k not in ("channels", "template")}
    channels = stored.get("channels")
    if channels:
        fields["channels"] = ChannelOverrides.model_construct(
            **{ch: _OVERRIDE_MODELS[ch].model_construct(**entry) for ch, entry in channels.items()
               if ch in _OVERRIDE_MODELS})
    content = Content.model_construct(**{"title": "", "html": None, "image_url": None, "action_url": None,
                                         "data": {}, "channels": None, **fields})
    content._source = stored.get("template")
    return content
