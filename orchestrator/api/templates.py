"""Templates: create, new version, read, list, and preview without sending. Thin handlers:
the logic is in content/templates.py. Writes take `templates:write` (or `admin`) and are
audited with the API key's name as the actor; reads and previews take any of send, read,
templates:write."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from policies import count_segments

from ..access.auth import require_scope
from ..app_state import state
from ..content import templates
from ..content.schemas import PreviewIn, TemplateCreate, TemplateVersionIn
from ..domain.statuses import Scope
from ..errors import ApiError, ErrorCode
from .declare import declare
from .models import PageQuery, TemplateList, TemplateOut, TemplatePreviewOut, TemplateVersionList, TemplateVersionOut
from .pagination import limit_arg
from .requests import parse_body

bp = Blueprint("templates", __name__, url_prefix="/v1")

READERS = (Scope.SEND, Scope.READ, Scope.TEMPLATES_WRITE)
MAX_PAGE = 200


@bp.post("/templates")
@declare("Create a template (version 1): a variant per channel, translations per locale, reply_to",
         body=TemplateCreate, responses={201: TemplateVersionOut}, errors=[409], tags=("templates",))
@require_scope(Scope.TEMPLATES_WRITE)
def create_template():
    st = state()
    _, body = parse_body(TemplateCreate)
    with st.db.session() as session:
        row = templates.create(st.db, session, body, g.api_key.name, st.clock())
        return jsonify(templates.version_dict(row)), 201


@bp.post("/templates/<template_id>/versions")
@declare("Save a new version (earlier ones stay, for pinned sends)", body=TemplateVersionIn,
         responses={201: TemplateVersionOut}, errors=[404, 409], tags=("templates",))
@require_scope(Scope.TEMPLATES_WRITE)
def add_version(template_id: str):
    st = state()
    _, body = parse_body(TemplateVersionIn)
    with st.db.session() as session:
        row = templates.add_version(st.db, session, template_id, body, g.api_key.name, st.clock())
        return jsonify(templates.version_dict(row)), 201


@bp.get("/templates")
@declare("Templates by id, with their latest version number", query=PageQuery,
         responses={200: TemplateList}, tags=("templates",))
@require_scope(*READERS)
def list_templates():
    limit = limit_arg(50, MAX_PAGE)
    cursor = request.args.get("cursor") or None
    with state().db.session() as session:
        rows = templates.list_rows(session, limit + 1, cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        return jsonify({"templates": [templates.template_dict(r) for r in rows],
                        "next_cursor": rows[-1].id if more else None})


@bp.get("/templates/<template_id>")
@declare("A template and its latest version", responses={200: TemplateOut}, errors=[404], tags=("templates",))
@require_scope(*READERS)
def get_template(template_id: str):
    with state().db.session() as session:
        row = templates.get_row(session, template_id)
        if row is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"id: no template '{template_id}'", field="id")
        latest = templates.get_version_row(session, template_id, row.latest_version)
        return jsonify(templates.template_dict(row, latest))


@bp.get("/templates/<template_id>/versions")
@declare("Every version of a template", responses={200: TemplateVersionList}, errors=[404], tags=("templates",))
@require_scope(*READERS)
def list_versions(template_id: str):
    with state().db.session() as session:
        if templates.get_row(session, template_id) is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"id: no template '{template_id}'", field="id")
        return jsonify({"versions": [templates.version_dict(r) for r in templates.list_versions(session, template_id)]})


@bp.get("/templates/<template_id>/versions/<int:version>")
@declare("One version of a template", responses={200: TemplateVersionOut}, errors=[404], tags=("templates",))
@require_scope(*READERS)
def get_version(template_id: str, version: int):
    with state().db.session() as session:
        row = templates.get_version_row(session, template_id, version) if version < 2**31 else None
        if row is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"version: template '{template_id}' has no version {version}",
                           field="version")
        return jsonify(templates.version_dict(row))


@bp.post("/templates/<template_id>/preview")
@declare("Render every channel for a locale and variables; nothing is sent", body=PreviewIn,
         responses={200: TemplatePreviewOut}, errors=[404], tags=("templates",))
@require_scope(*READERS)
def preview(template_id: str):
    """Renders every channel's variant for a locale and variables; nothing is stored or sent."""
    st = state()
    _, body = parse_body(PreviewIn)
    with st.db.session() as session:
        if templates.get_row(session, template_id) is None:
            raise ApiError(404, ErrorCode.NOT_FOUND, f"id: no template '{template_id}'", field="id")
        version = templates.compiled(st.db, session, template_id, body.version, field_prefix="")
    rendered = templates.render(version, body.locale, body.variables,
                                link_schemes=st.settings.action_url_schemes, prefix="")
    channels = {ch: {k: v for k, v in fields.items() if v} for ch, fields in rendered.channels.items()}
    if "sms" in channels:  # what the routing facts will count: the SMS text as rendered (maybe empty)
        info = count_segments(rendered.channels["sms"].get("text", ""))
        channels["sms"].update(segments=info.segments, encoding=info.encoding)
    return jsonify({"id": version.template_id, "version": version.version, "locale": rendered.locale,
                    "variables": sorted(version.variables), "channels": channels})
