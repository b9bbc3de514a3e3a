"""Uncertain sends: a worker claimed an attempt (committing `send_started_at`), called the
provider, and died before recording the outcome. The next claim, after the lease, settles it:
Twilio is asked (its List Messages resource, on the wire fake) and a message it holds is
recorded instead of being sent again; providers that cannot be asked follow the policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from orchestrator import metrics
from orchestrator.dispatch.deliver import claim
from orchestrator.storage.models import Attempt
from providers.base import AttemptStatus, Channel, Delivery, SearchIncomplete
from providers.twilio_sms import TwilioSMSProvider
from tests.dispatch.conftest import SID, TOKEN, attempts, die_mid_send
from tests.fakes.twilio_fake import TwilioFake


def uncertain_count(channel: str, resolution: str) -> float:
    return metrics.REGISTRY.get_sample_value("orchestrator_uncertain_sends_total",
                                             {"channel": channel, "resolution": resolution}) or 0.0


def sms_of(message, sent: dict) -> dict:
    """The SMS attempt of an accepted message, as GET /v1/messages/{id} shows it."""
    return attempts(message, sent["id"], "sms")[0]


def sms_died_mid_send(user, send, message, state, clock, body: str, *, reach_provider: bool) -> tuple[dict, str]:
    """A user's message whose SMS worker died mid-send (see die_mid_send): (accepted message, SMS attempt id)."""
    user()
    sent = send(body=body)
    sms_id = sms_of(message, sent)["id"]
    die_mid_send(state, clock, sms_id, reach_provider=reach_provider)
    return sent, sms_id


def test_the_claim_records_that_the_send_started(user, send, message, state, clock):
    user()
    sms_id = sms_of(message, send())["id"]
    with state.db.session() as s:
        assert claim(s, sms_id, clock.now, 60, "w")
    with state.db.session() as s:
        a = s.get(Attempt, sms_id)
        assert a.status == AttemptStatus.SENDING and a.send_started_at == clock.now and a.uncertain_at is None


def test_twilio_holds_the_message_so_it_is_recorded_not_sent_again(user, send, message, state, clock, twilio):
    before = uncertain_count("sms", "reconciled")
    sent, sms_id = sms_died_mid_send(user, send, message, state, clock, "Your code is 424242", reach_provider=True)
    [sid] = twilio.messages
    state.dispatcher.sweep_once()

    assert state.dispatcher.deliver(sms_id) == "sent"
    assert list(twilio.messages) == [sid], "not sent a second time"
    listing = [r for r in twilio.requests if r.method == "GET"]
    assert listing and "To=%2B447400123456" in listing[-1].path
    sms = sms_of(message, sent)
    assert sms["status"] == "sent" and sms["provider_message_id"] == sid
    assert sms["uncertain"] == {"at": sms["uncertain"]["at"], "count": 1, "resolution": "reconciled"}
    assert uncertain_count("sms", "reconciled") == before + 1
    with state.db.session() as s:
        assert s.get(Attempt, sms_id).send_count == 1
    # Its receipt finds it by the SID, as for any send.
    assert message(sent["id"])["status"] in ("in_progress", "sent")


def test_twilio_never_got_it_so_it_is_sent_once(user, send, message, state, clock, twilio):
    before = uncertain_count("sms", "not_sent")
    sent, sms_id = sms_died_mid_send(user, send, message, state, clock, "Your code is 777777", reach_provider=False)
    assert state.dispatcher.deliver(sms_id) == "sent"
    assert len(twilio.messages) == 1
    sms = sms_of(message, sent)
    assert sms["uncertain"]["resolution"] == "not_sent" and sms["tries"] == 2
    assert uncertain_count("sms", "not_sent") == before + 1


def test_an_identical_text_sent_by_another_attempt_is_not_taken_for_ours(user, send, message, state, clock,
                                                                           twilio, drain):
    user()
    first = send(body="Your order shipped")
    drain()
    assert len(twilio.messages) == 1  # the first message's, recorded on its attempt
    second = send(body="Your order shipped")
    sms_id = sms_of(message, second)["id"]
    die_mid_send(state, clock, sms_id, reach_provider=False)
    assert state.dispatcher.deliver(sms_id) == "sent"
    assert len(twilio.messages) == 2
    sids = {sms_of(message, m)["provider_message_id"] for m in (first, second)}
    assert sids == set(twilio.messages)


def test_twilio_unreachable_while_reconciling_asks_again_later(user, send, message, state, clock, twilio):
    sent, sms_id = sms_died_mid_send(user, send, message, state, clock, "Your code is 313131", reach_provider=True)
    twilio.fail_next(503)
    assert state.dispatcher.deliver(sms_id) == "retry_later"
    with state.db.session() as s:
        a = s.get(Attempt, sms_id)
        assert a.status == AttemptStatus.SENDING and a.lease_until > clock.now and a.uncertain_resolution is None
    assert state.dispatcher.deliver(sms_id) == "not_claimed"
    clock.advance(seconds=31)
    assert state.dispatcher.deliver(sms_id) == "sent"
    assert len(twilio.messages) == 1
    assert sms_of(message, sent)["uncertain"]["resolution"] == "reconciled"


@pytest.fixture
def sandbox_app(make_app):
    return make_app()  # no Twilio: every channel is a provider that cannot be asked


@pytest.mark.parametrize(("category", "resolution", "attempt_status"), [
    ("otp", "resent", "sent"),              # critical: a counted duplicate beats a miss
    ("winback", "failed", "failed"),        # marketing: a second one is the harm
    ("transactional", "fell_back", "failed"),
])
def test_providers_that_cannot_be_asked_follow_the_policy(sandbox_app, category, resolution, attempt_status,
                                                           clock):
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    state = sandbox_app.extensions[EXTENSION_KEY]
    client = sandbox_app.test_client()
    with state.db.session() as s:
        _, key = create_api_key(s, "t", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    client.put("/v1/recipients/u-1", headers=auth, json={
        "email": "ada@example.com", "phone": "+447400123456", "last_active_at": clock.now.isoformat(),
        "consents": {"sms": True, "email": True, "push": True, "marketing": True},
        "devices": [{"token": "f" * 64, "platform": "fcm"}]})
    r = client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": category, "content": {"title": "Hi", "body": "Hello"}})
    assert r.status_code == 202, r.get_json()
    msg = client.get(f"/v1/messages/{r.get_json()['id']}", headers=auth).get_json()
    first = next(a for a in msg["attempts"] if a["status"] == "queued" and a["due_at"]
                 and a["channel"] != Channel.IN_APP)
    before = uncertain_count(first["channel"], resolution)
    die_mid_send(state, clock, first["id"], reach_provider=False)

    state.dispatcher.deliver(first["id"])
    msg = client.get(f"/v1/messages/{msg['id']}", headers=auth).get_json()
    a = next(x for x in msg["attempts"] if x["id"] == first["id"])
    assert a["status"] == attempt_status
    assert a["uncertain"]["resolution"] == resolution and a["uncertain"]["count"] == 1
    assert uncertain_count(first["channel"], resolution) == before + 1
    with state.db.session() as s:
        row = s.get(Attempt, first["id"])
        # A resend after a send that may have arrived counts both: the duplicate is visible.
        assert row.send_count == (2 if resolution == "resent" else 0)
    if resolution == "failed":
        later = [x for x in msg["attempts"] if x["step"] > a["step"] and x["mode"] == "fallback"]
        assert all(x["status"] == "cancelled" for x in later)


FROM, TO = "+15005550006", "+447400123456"


def sms_to(to: str = TO, body: str = "n0") -> Delivery:
    return Delivery(message_id="m", attempt_id="a", channel=Channel.SMS, to=to, body=body)


@pytest.fixture
def twilio_provider(twilio):
    return TwilioSMSProvider(SID, TOKEN, from_number=FROM, base_url=twilio.base_url)


def listing_pages(fake) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET"]


def test_find_sent_reads_the_whole_window_however_busy_the_number(twilio, twilio_provider):
    """Ours is the oldest of 1,200 messages to the number since the send started (the newest
    200 were all the search used to read): found, in two pages of 1,000; the search stops at
    the page where the number's earlier history begins (its third page is never asked for)."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(1500):  # this morning's traffic, same text included
        at = since - timedelta(minutes=90) + timedelta(seconds=i)
        twilio.add_message(TO, "n0" if i % 100 == 0 else f"old {i}", from_=FROM, created=at, sent=at)
    ours = twilio.add_message(TO, "n0", from_=FROM, created=since + timedelta(seconds=1))
    twilio.add_message("+447400999999", "n0", from_=FROM, created=since + timedelta(seconds=2))  # another number
    for i in range(1199):
        at = since + timedelta(seconds=2, milliseconds=i)
        twilio.add_message(TO, f"busy {i}", from_=FROM, created=at, sent=at if i % 2 else None)

    found = twilio_provider.find_sent(sms_to(), since)

    assert [r.provider_message_id for r in found] == [ours]
    pages = listing_pages(twilio)
    assert len(pages) == 2 and "PageSize=1000" in pages[0] and "Page=1" in pages[1] and "PageToken=" in pages[1]
    assert twilio_provider.find_sent(sms_to(), datetime.now(UTC) + timedelta(hours=1)) == []


def test_find_sent_stops_at_the_windows_start(twilio, twilio_provider):
    """A number with a long history and a quiet window: one page, whatever lies beyond it."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    for i in range(2500):
        at = since - timedelta(hours=3) + timedelta(seconds=i)
        twilio.add_message(TO, "n0", from_=FROM, created=at, sent=at)
    assert twilio_provider.find_sent(sms_to(), since) == []
    assert len(listing_pages(twilio)) == 1


def test_a_queued_message_does_not_end_the_search(twilio, twilio_provider):
    """An old message still queued at Twilio (no date_sent) says nothing about where the rest
    of the window is listed: the search reads on to a message sent before the window."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    old = since - timedelta(hours=1)
    twilio.add_message(TO, "sent long ago", from_=FROM, created=old, sent=old)
    ours = twilio.add_message(TO, "n0", from_=FROM, created=since)
    for i in range(60):
        twilio.add_message(TO, f"queued {i}", from_=FROM, created=old + timedelta(seconds=1 + i))
    twilio_provider.FIND_PAGE_SIZE = 50  # the bound stays the provider's own; pages small enough to see them
    assert [r.provider_message_id for r in twilio_provider.find_sent(sms_to(), since)] == [ours]
    assert len(listing_pages(twilio)) == 2


def test_a_search_past_its_page_bound_says_it_is_incomplete(twilio, twilio_provider):
    """More messages since the send started than FIND_MAX_PAGES pages hold: not "not found"
    but SearchIncomplete, with the matches it did read."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    twilio_provider.FIND_PAGE_SIZE, twilio_provider.FIND_MAX_PAGES = 50, 3
    for i in range(151):
        at = since + timedelta(milliseconds=i)
        twilio.add_message(TO, "n0" if i == 150 else f"busy {i}", from_=FROM, created=at, sent=at)
    with pytest.raises(SearchIncomplete) as caught:
        twilio_provider.find_sent(sms_to(body="never sent"), since)
    assert caught.value.found == [] and len(listing_pages(twilio)) == 3
    with pytest.raises(SearchIncomplete) as caught:
        twilio_provider.find_sent(sms_to(), since)  # the newest is a match: it comes back with the error
    assert [r.provider_message_id for r in caught.value.found] == [
        sid for sid, m in twilio.messages.items() if m["body"] == "n0"]
    twilio.add_message(TO, "before", from_=FROM, created=since - timedelta(hours=1), sent=since - timedelta(hours=1))
    twilio_provider.FIND_MAX_PAGES = 4  # now the window fits: a complete answer
    assert len(twilio_provider.find_sent(sms_to(), since)) == 1


@pytest.mark.slow  # ~3 s a database: 10,000 messages listed in 10 pages
def test_an_uncertain_send_the_search_cannot_cover_is_not_called_not_sent(user, send, message, state, clock,
                                                                         twilio):
    """The number got more messages since the send started than the search may read (the
    provider's real bound: 10 pages of 1,000): the attempt is not labelled `not_sent`; the
    policy's uncertain_sends action decides (OTP: resend, counted in send_count)."""
    before = uncertain_count("sms", "not_sent")
    sent, sms_id = sms_died_mid_send(user, send, message, state, clock, "Your code is 909090", reach_provider=False)
    since = clock.now  # the send's start, by the app's clock
    pages = TwilioSMSProvider.FIND_PAGE_SIZE * TwilioSMSProvider.FIND_MAX_PAGES
    for i in range(pages + 1):
        at = since + timedelta(milliseconds=i)
        twilio.add_message(TO, f"busy {i}", from_=FROM, created=at, sent=at)

    assert state.dispatcher.deliver(sms_id) == "sent"
    sms = sms_of(message, sent)
    assert sms["uncertain"]["resolution"] == "resent"
    assert uncertain_count("sms", "not_sent") == before
    assert len(listing_pages(twilio)) == TwilioSMSProvider.FIND_MAX_PAGES
    with state.db.session() as s:
        assert s.get(Attempt, sms_id).send_count == 2  # it may have gone: the possible duplicate is counted


def test_the_fake_lists_like_twilio():
    import httpx

    with TwilioFake(SID, TOKEN) as fake:
        url = f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages.json"
        for body in ("a", "b", "c"):
            httpx.post(url, auth=(SID, TOKEN), data={"To": "+447400123456", "From": "+15005550006", "Body": body})
        r = httpx.get(url, auth=(SID, TOKEN), params={"To": "+447400123456", "PageSize": 2})
        page = r.json()
        assert r.status_code == 200 and [m["body"] for m in page["messages"]] == ["c", "b"]
        assert {"first_page_uri", "next_page_uri", "previous_page_uri", "page", "page_size", "start", "end",
                "uri"} <= set(page)
        assert page["page"] == 0 and page["start"] == 0 and page["end"] == 1 and page["previous_page_uri"] is None
        nxt = httpx.get(fake.base_url + page["next_page_uri"], auth=(SID, TOKEN)).json()
        assert [m["body"] for m in nxt["messages"]] == ["a"] and nxt["next_page_uri"] is None
        # DateSent filters on date_sent, which Twilio sets only once the message is sent.
        today = nxt["messages"][0]["date_created"]
        assert httpx.get(url, auth=(SID, TOKEN), params={"DateSent>": "2000-01-01"}).json()["messages"] == []
        fake.mark_sent(page["messages"][0]["sid"])
        dated = httpx.get(url, auth=(SID, TOKEN), params={"DateSent>": "2000-01-01"}).json()["messages"]
        assert [m["body"] for m in dated] == ["c"] and today
        assert httpx.get(url, auth=("AC" + "9" * 32, TOKEN)).status_code == 401
        assert httpx.get(url, auth=(SID, TOKEN), params={"PageSize": "0"}).status_code == 400


def test_the_fake_lists_by_creation_and_sends_slowly_when_asked():
    """History added out of order is listed newest first by creation, as Twilio lists; with
    `send_delay` a send takes that long and its message exists from half-way through."""
    import time

    import httpx

    created_at: list[float] = []
    with TwilioFake(SID, TOKEN, send_delay=0.4, on_message=lambda m: created_at.append(time.monotonic())) as fake:
        url = f"{fake.base_url}/2010-04-01/Accounts/{SID}/Messages.json"
        now = datetime.now(UTC)
        for minutes in (30, 10, 20):
            fake.add_message(TO, f"{minutes} min ago", from_=FROM, created=now - timedelta(minutes=minutes),
                             sent=now - timedelta(minutes=minutes))
        started = time.monotonic()
        r = httpx.post(url, auth=(SID, TOKEN), data={"To": TO, "From": FROM, "Body": "now"})
        answered = time.monotonic()
        assert r.status_code == 201 and answered - started >= 0.4
        assert created_at[0] - started >= 0.2 and answered - created_at[0] >= 0.2
        listed = httpx.get(url, auth=(SID, TOKEN), params={"To": TO}).json()["messages"]
        assert [m["body"] for m in listed] == ["now", "10 min ago", "20 min ago", "30 min ago"]
        assert listed[1]["status"] == "delivered" and listed[1]["date_sent"] == listed[1]["date_created"]


def test_the_hot_path_claim_reads_no_more(state):
    """The uncertainty columns ride on the claim's UPDATE … RETURNING: no statement added."""
    from orchestrator.dispatch import deliver

    compiled = str(deliver._CLAIM.compile(state.db.engine))
    assert "send_started_at" in compiled and "uncertain_at" in compiled
    with state.db.session() as s:
        assert s.scalar(select(Attempt.id).limit(1)) is None


def test_an_uncertain_send_of_an_expired_message_is_not_resent(sandbox_app, clock):
    """Provider cannot be asked, policy says resend (OTP), but the message expired meanwhile:
    it ends expired, uncertain, and nothing is sent again."""
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    state = sandbox_app.extensions[EXTENSION_KEY]
    client = sandbox_app.test_client()
    with state.db.session() as s:
        _, key = create_api_key(s, "t", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    client.put("/v1/recipients/u-1", headers=auth, json={"phone": "+447400123456", "consents": {"sms": True}})
    r = client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "Your code is 1"},
        "expires_at": (clock.now + timedelta(seconds=30)).isoformat()})
    assert r.status_code == 202, r.get_json()
    sms = next(a for a in r.get_json().get("attempts", []) or
               client.get(f"/v1/messages/{r.get_json()['id']}", headers=auth).get_json()["attempts"]
               if a["channel"] == "sms")
    die_mid_send(state, clock, sms["id"], reach_provider=False)
    assert state.dispatcher.deliver(sms["id"]) == "expired"
    a = next(x for x in client.get(f"/v1/messages/{r.get_json()['id']}", headers=auth).get_json()["attempts"]
             if x["id"] == sms["id"])
    assert a["status"] == "expired" and a["uncertain"]["resolution"] == "failed"
    with state.db.session() as s:
        assert s.get(Attempt, sms["id"]).send_count == 0


def test_an_uncertain_in_app_send_is_simply_made(sandbox_app, clock):
    """In-app is the service's own: the item shows only once the attempt is recorded sent,
    so the dead worker's half-done send reached nobody."""
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    state = sandbox_app.extensions[EXTENSION_KEY]
    client = sandbox_app.test_client()
    with state.db.session() as s:
        _, key = create_api_key(s, "t", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    client.put("/v1/recipients/u-1", headers=auth, json={"email": "ada@example.com",
                                                         "last_active_at": clock.now.isoformat()})
    assert client.post("/v1/recipients/u-1/presence", headers=auth).status_code in (200, 202, 204)
    r = client.post("/v1/messages", headers=auth, json={
        "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"title": "Hi", "body": "Welcome"}})
    assert r.status_code == 202, r.get_json()
    msg = client.get(f"/v1/messages/{r.get_json()['id']}", headers=auth).get_json()
    inapp = next(a for a in msg["attempts"] if a["channel"] == "in_app")
    die_mid_send(state, clock, inapp["id"], reach_provider=False)
    state.dispatcher.deliver(inapp["id"])
    msg = client.get(f"/v1/messages/{msg['id']}", headers=auth).get_json()
    inapp = next(a for a in msg["attempts"] if a["id"] == inapp["id"])
    assert inapp["status"] == "sent" and inapp["uncertain"]["resolution"] == "not_sent"


def test_twilio_refusing_the_listing_leaves_it_to_the_policy(user, send, message, state, clock, twilio):
    """A permanent refusal (the credentials may not list messages) is not asked again for
    ever: the policy decides (OTP: resend, visible and counted)."""
    sent, sms_id = sms_died_mid_send(user, send, message, state, clock, "Your code is 565656", reach_provider=True)
    twilio.fail_next(403, 20003)
    assert state.dispatcher.deliver(sms_id) == "sent"
    sms = sms_of(message, sent)
    assert sms["uncertain"]["resolution"] == "resent" and len(twilio.messages) == 2
    with state.db.session() as s:
        assert s.get(Attempt, sms_id).send_count == 2  # the duplicate is visible
