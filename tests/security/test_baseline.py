"""Security baseline (ASVS L2 yardstick): sessions, redirects, headers, proxies, errors, hostile input."""
from __future__ import annotations

import datetime as dt

import pytest

from helpdesk.accounts import service
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.auth import public
from helpdesk.security import safe_next
from tests.conftest import PASSWORD, base_config

# --------------------------------------------------------------------------- sessions


def test_login_issues_a_fresh_session(app, client, make_user):
    user = make_user()
    with client.session_transaction() as sess:
        sess["planted"] = "attacker-chosen"
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"] == f"{user.id}:{user.session_version}"


def test_session_cookie_flags(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _signed_in_client(app, user):
    c = app.test_client()
    assert c.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return c


def _is_signed_in(c) -> bool:
    response = c.get("/account/password")
    return response.status_code == 200


def test_logout_ends_the_users_other_sessions(app, make_user):
    user = make_user()
    first, second = _signed_in_client(app, user), _signed_in_client(app, user)
    assert _is_signed_in(second)
    first.post("/logout")
    assert not _is_signed_in(first)
    assert not _is_signed_in(second)


def test_password_change_ends_other_sessions_but_keeps_this_one(app, make_user):
    user = make_user()
    here, elsewhere = _signed_in_client(app, user), _signed_in_client(app, user)
    response = here.post("/account/password", data={"current_password": PASSWORD, "new_password": "Fresh-Passw0rd-2",
                                                    "confirm": "Fresh-Passw0rd-2"})
    assert response.status_code == 302
    assert _is_signed_in(here)
    assert not _is_signed_in(elsewhere)


def test_disabling_a_user_ends_their_sessions(app, db, make_user):
    user = make_user()
    c = _signed_in_client(app, user)
    service.set_disabled(db.session, user.id, True, Actor.system())
    assert not _is_signed_in(c)
    # and they cannot sign in again
    assert app.test_client().post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 401


def test_idle_timeout(app, client, make_user, login):
    login(make_user())
    assert _is_signed_in(client)
    with client.session_transaction() as sess:
        sess["seen_at"] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 5
    assert not _is_signed_in(client)
    login_page = client.get("/login").get_data(as_text=True)
    assert "安全のためログアウトしました" in login_page


def test_absolute_timeout_even_when_active(app, client, make_user, login):
    login(make_user())
    with client.session_transaction() as sess:
        sess["login_at"] -= app.config["SESSION_ABSOLUTE_HOURS"] * 3600 + 5
    assert not _is_signed_in(client)


def test_activity_keeps_the_session_within_the_idle_limit(app, client, make_user, login):
    login(make_user())
    with client.session_transaction() as sess:
        sess["seen_at"] -= app.config["SESSION_IDLE_MINUTES"] * 60 - 60
    assert _is_signed_in(client)  # still inside the window: the request refreshes seen_at
    with client.session_transaction() as sess:
        assert dt.datetime.now(dt.timezone.utc).timestamp() - sess["seen_at"] < 60


def test_a_request_soon_after_the_last_does_not_resend_the_session_cookie(app, client, make_user, login):
    # A background request that answers late must not put back an older cookie (a form POST's flash
    # message was lost that way): inside a minute the session is not rewritten.
    login(make_user())
    client.get("/")
    response = client.get("/")
    assert response.status_code in (200, 302)
    assert "Set-Cookie" not in response.headers
    with client.session_transaction() as sess:
        sess["seen_at"] -= 61
    assert "Set-Cookie" in client.get("/").headers


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com/", "/\\evil.example.com",
                                    "\\\\evil.example.com", "javascript:alert(1)", "/\tevil", "http:/evil",
                                    " //evil.example.com", "/ok\r\nSet-Cookie: x=1"])
def test_next_refuses_other_sites(target):
    assert safe_next(target) is None


def test_next_keeps_local_paths():
    assert safe_next("/accounts/users?q=1") == "/accounts/users?q=1"


def test_login_next_to_another_site_lands_home(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "//evil.example.com/x"})
    assert "evil" not in response.headers["Location"]


def test_language_switch_next_only_local(client):
    response = client.post("/lang", data={"lang": "en", "next": "https://evil.example.com/"})
    assert "evil" not in response.headers["Location"]


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page", "/static/css/app.css", "/password/forgot"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_with_personal_data_are_not_cached(client, make_user, login):
    login(make_user(roles="supervisor"))
    response = client.get("/accounts/activation")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_account_pages_have_no_inline_script_or_style(client, make_user, login):
    login(make_user(roles="admin supervisor"))
    for path in ("/accounts/activation", "/accounts/users", "/admin", "/admin/audit", "/admin/users/new",
                 "/admin/organisations", "/admin/organisations/new"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and " onclick=" not in html, path


# --------------------------------------------------------------------------- proxies


def _ip_app(**overrides):
    from helpdesk import create_app
    from helpdesk.security import client_ip

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI="sqlite://", **overrides))

    @app.get("/_test/ip")
    @public
    def _ip():
        return client_ip()

    return app


def test_x_forwarded_for_ignored_without_a_trusted_proxy():
    app = _ip_app(TRUSTED_PROXIES=0)
    body = app.test_client().get("/_test/ip", headers={"X-Forwarded-For": "203.0.113.9"},
                                 environ_base={"REMOTE_ADDR": "10.0.0.5"}).get_data(as_text=True)
    assert body == "10.0.0.5"


def test_x_forwarded_for_used_behind_one_trusted_proxy():
    app = _ip_app(TRUSTED_PROXIES=1)
    body = app.test_client().get("/_test/ip", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
                                 environ_base={"REMOTE_ADDR": "10.0.0.5"}).get_data(as_text=True)
    # Only the hop added by our proxy counts; the client-supplied first value is not trusted.
    assert body == "203.0.113.9"


# --------------------------------------------------------------------------- errors and hostile input


def test_unexpected_error_gives_a_generic_page_without_stack_trace():
    from helpdesk import create_app

    app = create_app(base_config(SQLALCHEMY_DATABASE_URI="sqlite://"))

    @app.get("/_test/boom")
    @public
    def _boom():
        raise RuntimeError("secret internals at /srv/app.py line 42")

    response = app.test_client().get("/_test/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in body and "secret internals" not in body and "app.py" not in body
    assert "システムでエラーが発生しました" in body


@pytest.mark.parametrize("path, code", [
    ("/login?next=%00", 400),
    ("/accounts/users?q=%FF%FE", 400),
    ("/accounts/activation?page=99999999999", 404),
    ("/accounts/activation?page=-1", 404),
    ("/accounts/activation?page=abc", 404),
    ("/accounts/activation?page=0", 404),
    ("/accounts/users?page=500", 404),
    ("/admin/audit?page=100000", 404),
    ("/accounts/users/99999999", 404),
    ("/accounts/users/%00", 400),
    ("/accounts/users?q=%00", 400),
])
def test_hostile_urls_answer_4xx(client, make_user, login, path, code):
    login(make_user(roles="admin supervisor agent"))
    assert client.get(path).status_code == code


def test_nul_byte_in_a_form_field_is_400(client):
    response = client.post("/login", data={"email": "a\x00@example.jp", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("body", [b"email=%FF%FE&password=x", b"email=\xff\xfe&password=x",
                                  b"email=a%00b&password=x"])
def test_invalid_utf8_or_nul_in_a_form_body_is_400(client, body):
    response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_raw_invalid_utf8_in_the_query_string_is_400(client):
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path="/login").get_environ()
    environ["QUERY_STRING"] = b"next=\xff".decode("latin-1")
    response = client.open(environ)
    assert response.status_code == 400


def test_huge_body_is_413(app, client):
    big = "a" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = client.post("/login", data={"email": big, "password": "x"})
    assert response.status_code == 413


def test_huge_field_is_refused_without_500(client, make_user, login):
    response = client.post("/login", data={"email": "a" * 600_000 + "@example.jp", "password": "x"})
    assert response.status_code < 500
    assert "ログインIDまたはパスワード" not in response.get_data(as_text=True)  # refused before any lookup
    response = client.get("/accounts/users?q=" + "佐" * 5000)
    assert response.status_code in (200, 302, 400, 414)


def test_search_with_like_wildcards_is_literal(client, db, make_user, login):
    login(make_user(roles="agent"))
    make_user(name="百パーセント 太郎")
    body = client.get("/accounts/users?q=%25").get_data(as_text=True)
    assert "百パーセント" not in body


def test_locked_user_still_gets_the_generic_message(client, db, make_user):
    user = make_user(locked_at=dt.datetime.now(dt.timezone.utc))
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 401
    assert service.LOGIN_FAILED in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is None


@pytest.mark.parametrize("value", ["two", "-1", "nan"])
def test_bad_seconds_setting_is_refused_with_its_name(monkeypatch, tmp_path, value):
    from helpdesk import config

    monkeypatch.setenv("DB_PING_IDLE_SECONDS", value)
    with pytest.raises(RuntimeError, match="DB_PING_IDLE_SECONDS must be a number of seconds"):
        config.load(str(tmp_path))
    monkeypatch.setenv("DB_PING_IDLE_SECONDS", "0.5")
    assert config.load(str(tmp_path))["DB_PING_IDLE_SECONDS"] == 0.5
