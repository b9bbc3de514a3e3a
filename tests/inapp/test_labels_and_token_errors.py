"""What the in-app client is told in words: category and channel labels from the policy in
the asked locale (?locale= or Accept-Language) on the preference center and inbox items,
and 401s that tell an expired token (refresh) from a revoked one (sign out)."""

from __future__ import annotations

import pytest

PATH = "/v1/inbox/preferences"


def by_category(body):
    return {c["category"]: c for c in body["categories"]}


def test_preferences_are_labelled_in_english_by_default(client, user, user_token):
    user()
    headers, _ = user_token()
    body = client.get(PATH, headers=headers).get_json()
    assert body["locale"] == "en"
    assert body["channels"] == [{"id": "in_app", "label": "In-app"}, {"id": "push", "label": "Push"},
                                {"id": "sms", "label": "SMS"}, {"id": "email", "label": "Email"},
                                {"id": "whatsapp", "label": "WhatsApp"}]
    cats = by_category(body)
    assert cats["security_alert"]["label"] == "Security alerts" and cats["security_alert"]["locked"] is True
    assert cats["winback"]["label"] == "Come-back offers"
    assert all(c["label"] and c["description"] for c in body["categories"])


@pytest.mark.parametrize("query, header, locale", [
    ({"locale": "ko"}, None, "ko"),
    ({"locale": "ko-KR"}, None, "ko"),
    ({}, "ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
    ({}, "fr-CH, ko;q=0.5", "ko"),
    ({}, "fr-CH, fr;q=0.9", "en"),          # unknown: English
    ({"locale": "fr"}, "ko", "en"),          # ?locale= wins over the header
    ({}, "\x7f;;;q=zz,,", "en"),             # a malformed header is ignored
    ({}, "ko;q=0", "en"),                    # q=0 means "not this one"
])
def test_the_locale_comes_from_the_query_or_accept_language(client, user, user_token, query, header, locale):
    user()
    headers, _ = user_token()
    if header is not None:
        headers = {**headers, "Accept-Language": header}
    body = client.get(PATH, headers=headers, query_string=query).get_json()
    assert body["locale"] == locale
    social = by_category(body)["social"]
    if locale == "ko":
        assert (social["label"], social["description"]) == ("소셜 활동", "댓글, 멘션 및 팔로우")
        assert [c["label"] for c in body["channels"]] == ["앱 내 알림", "푸시", "문자 메시지", "이메일", "왓츠앱"]
    else:
        assert social["label"] == "Social activity"


def test_put_answers_in_the_asked_locale_too(client, user, user_token):
    user()
    headers, _ = user_token()
    r = client.put(PATH, headers=headers, query_string={"locale": "ko"},
                   json={"preferences": {"social": {"email": False}}})
    assert r.status_code == 200
    body = r.get_json()
    assert body["locale"] == "ko" and by_category(body)["social"]["label"] == "소셜 활동"
    assert by_category(body)["social"]["channels"]["email"] is False


@pytest.mark.parametrize("locale", ["k", "ko_KR_x_y_z_w", "x" * 36, "ko\x00", "한국어", "12", "ko-", "-ko"])
def test_a_malformed_locale_is_422_naming_it(client, user, user_token, locale):
    user()
    headers, _ = user_token()
    for r in (client.get(PATH, headers=headers, query_string={"locale": locale}),
              client.get("/v1/inbox", headers=headers, query_string={"locale": locale})):
        assert r.status_code == 422, (locale, r.get_json())
        assert r.get_json()["error"]["field"] == "locale"


def test_a_policy_without_labels_gets_humanised_ids(make_app, tmp_path):
    import yaml

    from policies import load_default_policy
    from tests.inapp.conftest import key_for

    doc = dict(load_default_policy().document)
    del doc["labels"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    app = make_app(POLICY_FILE=str(path))
    client = app.test_client()
    token = client.post("/v1/recipients/u-1/inapp-token", headers=key_for(app)).get_json()["token"]
    body = client.get(PATH, headers={"Authorization": f"Bearer {token}", "Accept-Language": "ko"}).get_json()
    assert body["locale"] == "en"
    cats = by_category(body)
    assert (cats["trial_expiry"]["label"], cats["trial_expiry"]["description"]) == ("Trial expiry", "")
    assert [c["label"] for c in body["channels"]] == ["In-app", "Push", "Email", "SMS", "WhatsApp"]


def test_inbox_items_carry_the_category_label_in_the_asked_locale(client, auth, user, send, drain, user_token,
                                                                  clock):
    user(last_active_at=clock().isoformat())
    assert client.post("/v1/recipients/u-1/presence", headers=auth).status_code == 200  # online: in-app
    send(category="onboarding")
    drain()
    headers, _ = user_token()
    items = client.get("/v1/inbox", headers=headers).get_json()["items"]
    assert [(i["category"], i["category_label"]) for i in items] == [("onboarding", "Getting started")]
    items = client.get("/v1/inbox", headers={**headers, "Accept-Language": "ko"}).get_json()["items"]
    assert items[0]["category_label"] == "시작하기"
    items = client.get("/v1/inbox?locale=en", headers={**headers, "Accept-Language": "ko"}).get_json()["items"]
    assert items[0]["category_label"] == "Getting started"


# -- 401s a client can act on --------------------------------------------------------------
ROUTES = [("get", "/v1/inbox"), ("post", "/v1/inbox/01ARZ3NDEKTSV4RRFFQ69G5FAV/read"),
          ("post", "/v1/inbox/01ARZ3NDEKTSV4RRFFQ69G5FAV/archive"), ("post", "/v1/inbox/read-all"),
          ("get", PATH)]


def codes(client, headers) -> set[str]:
    found = set()
    for method, path in ROUTES:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 401, (path, r.get_json())
        error = r.get_json()["error"]
        assert error["field"] == "Authorization"
        found.add(error["code"])
    return found


def test_an_expired_token_is_401_token_expired(client, user, user_token, clock):
    user()
    headers, _ = user_token()
    assert client.get("/v1/inbox", headers=headers).status_code == 200
    clock.advance(days=1, seconds=1)  # IN_APP_TOKEN_TTL_SECONDS: one day
    assert codes(client, headers) == {"token_expired"}


def test_a_revoked_token_is_401_token_revoked_even_after_it_expired(client, auth, user, user_token, clock):
    user()
    headers, token_id = user_token()
    assert client.delete(f"/v1/inapp-tokens/{token_id}", headers=auth).status_code == 200
    assert codes(client, headers) == {"token_revoked"}
    clock.advance(days=2)
    assert codes(client, headers) == {"token_revoked"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ut_never-issued"},
                                     {"Authorization": "Bearer not-a-user-token"}])
def test_a_missing_or_unknown_token_is_401_unauthorized(client, headers):
    assert codes(client, headers) == {"unauthorized"}


def test_an_erased_users_token_is_401_unauthorized(client, auth, user, user_token):
    user()
    headers, _ = user_token()
    assert client.delete("/v1/recipients/u-1", headers=auth).status_code == 200
    assert codes(client, headers) == {"unauthorized"}  # its tokens are gone with it
