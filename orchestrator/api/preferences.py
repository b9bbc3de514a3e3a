"""The preference center: the in-app client reads and changes its user's own preferences
per category and channel, authenticated by the user token (never the API key).

    GET /v1/inbox/preferences   every category of the active policy, its channels on/off,
                                locked categories marked (and always on), with human labels
                                of categories and channels in the client's locale
                                (?locale= or Accept-Language; policies/labels.py)
    PUT /v1/inbox/preferences   {"preferences": {"social": {"email": false}}}: false turns a
                                channel off for that category, true or null on again; the
                                answer is the new state, as GET shows it

A user can change only what the policy lets them: a locked category (security, legal,
codes) is refused with 422 `preference_locked`. The routes live under /v1/inbox so they
answer cross-origin like the rest of the client routes (api.py's CORS hooks)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..app_state import state
from ..inapp import locales, tokens
from ..recipients import preferences
from ..schemas import PreferencesIn
from ..sending.facts import load_recipient
from ..storage.models import Recipient
from . import inbox as api
from .declare import Auth, declare
from .models import LocaleQuery, PreferencesOut
from .recipients import retry_on_conflict
from .requests import parse_body

bp = Blueprint("inapp_preferences", __name__)
bp.before_request(api._preflight)
bp.after_request(api._cors)

PATH = f"{api.CLIENT_PREFIX}/preferences"


def _body(user_id: str, stored, policy) -> dict:
    locale = locales.for_request(policy.labels)
    return {"user_id": user_id, "policy_version": policy.version, "locale": locale,
            "channels": preferences.channel_labels(policy, locale),
            "categories": preferences.view(policy, stored, locale)}


@bp.get(PATH)
@declare("The user's preferences per category and channel, labelled in the client's locale; locked categories "
         "marked", query=LocaleQuery, responses={200: PreferencesOut}, auth=Auth.USER_TOKEN,
         tags=("in-app client",))
def get_preferences():
    st = state()
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, st.clock())
        row = load_recipient(session, user_id)
        stored = row.preferences if row is not None else None
    return jsonify(_body(user_id, stored, st.policies.active()))


@bp.put(PATH)
@declare("Change the user's preferences: false turns a channel off for a category, true or null on; "
         "a locked category is 422 preference_locked", query=LocaleQuery, body=PreferencesIn,
         responses={200: PreferencesOut},
         auth=Auth.USER_TOKEN, tags=("in-app client",))
def put_preferences():
    st = state()
    with st.db.session() as session:
        user_id = tokens.user_for_request(session, st.clock())  # authenticated before the body is read
    _, data = parse_body(PreferencesIn)
    policy = st.policies.active()
    preferences.check(policy, data.preferences)

    def work(session):
        row = load_recipient(session, user_id)
        if row is None:
            row = Recipient(user_id=user_id, consents={}, devices=[])
            session.add(row)
        preferences.update(row, policy, data.preferences)
        session.flush()
        return dict(row.preferences or {})

    stored = retry_on_conflict(work)
    return jsonify(_body(user_id, stored, policy))
