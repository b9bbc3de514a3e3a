"""One-time invitation links: /review/invite/<token>. GET shows who the link signs in and
with which scopes; POST (with the CSRF token) uses the link once, creates the reviewer
(compliance/reviewers.py) and signs the browser in. A used, expired or unknown link gets a page
that says which, never an error."""

from __future__ import annotations

from flask import redirect, render_template, url_for

from ..app_state import state
from ..compliance import reviewers
from ..domain.statuses import InvitationState
from .session import bp, start_session

_REFUSALS = {
    InvitationState.UNKNOWN: (404, "Invitation not found",
                              "This invitation link is not known. Check that the whole link was copied, or ask "
                              "an administrator for a new one."),
    InvitationState.USED: (410, "Invitation already used",
                           "This invitation link has already been used: each link signs in once. If that was "
                           "not you, tell an administrator; otherwise sign in again with a new invitation."),
    InvitationState.EXPIRED: (410, "Invitation expired",
                              "This invitation link has expired. Ask an administrator for a new one."),
}


def _refused(invitation_state: InvitationState):
    status, title, message = _REFUSALS[invitation_state]
    return render_template("review/error.html", title=title, message=message), status


@bp.get("/invite/<token>")
def invitation(token: str):
    st = state()
    with st.db.session() as s:
        found, row = reviewers.find_invitation(s, token, st.clock())
        if found is not InvitationState.USABLE:
            return _refused(found)
        details = {"name": row.name, "scopes": row.scopes.split(","), "expires_at": row.expires_at}
    return render_template("review/invite.html", token=token, invitation=details)


@bp.post("/invite/<token>")
def accept_invitation(token: str):
    st = state()
    with st.db.session() as s:
        found, reviewer = reviewers.accept_invitation(s, token, st.clock())
        if reviewer is None:
            s.rollback()
            return _refused(found)
        key_id = reviewer.key_id
    start_session(key_id)
    return redirect(url_for("review.index"))
