"""Which locale an in-app client request is answered in (category and channel labels):
`?locale=` when given, else the Accept-Language header, matched against the locales the
active policy's labels are written in; English when none matches. A malformed `?locale=`
is 422 naming `locale`; a malformed Accept-Language header is ignored (browsers send it by
themselves)."""

from __future__ import annotations

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from policies.labels import Labels, normalise_locale

from ..errors import ApiError, ErrorCode

MAX_ACCEPT_LANGUAGE_CHARS = 1000


def wanted(query_locale: str | None, accept_language: str | None) -> list[str]:
    """The locales the client asks for, best first."""
    if query_locale is not None and query_locale != "":
        tag = normalise_locale(query_locale)
        if tag is None:
            raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                           "locale: a language tag such as en, ko or pt-BR", field="locale")
        return [tag]
    if not accept_language or len(accept_language) > MAX_ACCEPT_LANGUAGE_CHARS:
        return []
    accepted = parse_accept_header(accept_language, LanguageAccept)
    return [value for value, quality in accepted if quality > 0 and value != "*"]


def choose(labels: Labels, query_locale: str | None, accept_language: str | None) -> str:
    return labels.locale_for(wanted(query_locale, accept_language))


def for_request(labels: Labels) -> str:
    """Flask side: the locale of the current request."""
    from flask import request

    return choose(labels, request.args.get("locale"), request.headers.get("Accept-Language"))
