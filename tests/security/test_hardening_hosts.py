"""Issue 13.1: absolute URLs come from BASE_URL, requests for other hosts are refused, no BASE_URL = no start."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk import create_app
from helpdesk.accounts.models import User
from helpdesk.audit import Actor
from helpdesk.notify.models import Outbox
from helpdesk.routing import BaseUrlError
from tests.conftest import PASSWORD, base_config

PUBLIC = "https://helpdesk.example.jp"


@pytest.fixture
def public_app(app, monkeypatch):
    """The session app as deployed at PUBLIC (TRUSTED_HOSTS derived from it; no localhost)."""
    monkeypatch.setitem(app.config, "BASE_URL", PUBLIC)
    monkeypatch.setitem(app.config, "TRUSTED_HOSTS", ["helpdesk.example.jp"])
    return app


def _reset_mails(db, email):
    db.session.expire_all()
    return db.session.scalars(select(Outbox).where(Outbox.recipient == email)).all()


def test_forged_host_gets_400_and_no_mail(public_app, db, make_user):
    user = make_user()
    client = public_app.test_client()
    response = client.post("/password/forgot", data={"email": user.email}, headers={"Host": "evil.tld"})
    assert response.status_code == 400
    assert _reset_mails(db, user.email) == []
    # Through a proxy: the forwarded host is judged the same way (ProxyFix is not configured: header ignored).
    response = client.post("/password/forgot", data={"email": user.email},
                           headers={"Host": "helpdesk.example.jp", "X-Forwarded-Host": "evil.tld"},
                           base_url=PUBLIC)
    assert response.status_code == 302
    (mail,) = _reset_mails(db, user.email)
    assert f"{PUBLIC}/password/reset/" in mail.body_text
    assert "evil.tld" not in mail.body_text


def test_reset_link_uses_base_url_even_for_a_trusted_alias(public_app, db, make_user, monkeypatch):
    """An extra trusted host (ALLOWED_HOSTS) may reach the app, but links still point at BASE_URL."""
    monkeypatch.setitem(public_app.config, "TRUSTED_HOSTS", ["helpdesk.example.jp", "internal.lan"])
    user = make_user()
    client = public_app.test_client()
    assert client.post("/password/forgot", data={"email": user.email},
                       base_url="http://internal.lan").status_code == 302
    (mail,) = _reset_mails(db, user.email)
    assert f"{PUBLIC}/password/reset/" in mail.body_text and "internal.lan" not in mail.body_text


def test_staff_sent_reset_link_uses_base_url(public_app, db, make_user):
    staff = make_user(roles="supervisor admin")
    user = make_user()
    client = public_app.test_client()
    assert client.post("/login", data={"email": staff.email, "password": PASSWORD},
                       base_url=PUBLIC).status_code == 302
    response = client.post(f"/accounts/users/{user.id}/reset-link", base_url=PUBLIC)
    assert response.status_code == 302
    (mail,) = _reset_mails(db, user.email)
    assert f"{PUBLIC}/password/reset/" in mail.body_text


def test_api_links_use_base_url(public_app, db, make_user, make_ticket):
    from helpdesk.api import service as api_service

    user = make_user(roles="agent")
    ticket = make_ticket()
    token = api_service.create_token(db.session, name="hosts-test", user_email=user.email, scopes=["read"],
                                     actor=Actor.system("test")).plaintext
    client = public_app.test_client()
    response = client.get(f"/api/v1/tickets/{ticket.ref}", headers={"Authorization": f"Bearer {token}"},
                          base_url=PUBLIC)
    assert response.status_code == 200, response.get_data(as_text=True)
    urls = [v for v in _walk(response.get_json()) if isinstance(v, str) and "://" in v]
    assert urls and all(u.startswith(PUBLIC + "/") for u in urls), urls
    assert client.get(f"/api/v1/tickets/{ticket.ref}", headers={"Authorization": f"Bearer {token}",
                                                                "Host": "evil.tld"}).status_code == 400


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_mail_links_come_from_base_url_not_the_request(public_app, db, make_ticket):
    from helpdesk.notify.service import _url

    with public_app.test_request_context("/", base_url="http://evil.tld"):
        assert _url("/portal/tickets/HD-000001") == f"{PUBLIC}/portal/tickets/HD-000001"


# --------------------------------------------------------------------------- start-up


@pytest.fixture
def production_env(monkeypatch):
    for name in ("BASE_URL", "HELPDESK_CLI", "HELPDESK_DEMO", "ALLOWED_HOSTS", "HELPDESK_TRUSTED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _production_config(**overrides):
    return base_config(**{"TESTING": False, "SECRET_KEY": "a-real-secret", **overrides})


def test_refuses_to_start_without_base_url(production_env):
    with pytest.raises(BaseUrlError, match="BASE_URL is not set"):
        create_app(_production_config())
    with pytest.raises(BaseUrlError, match="BASE_URL must be"):
        create_app(_production_config(BASE_URL="helpdesk.example.jp"))


def test_trusted_hosts_are_base_url_plus_allowed_hosts(production_env):
    app = create_app(_production_config(BASE_URL=PUBLIC + "/", ALLOWED_HOSTS=["Internal.LAN"]))
    assert app.config["BASE_URL"] == PUBLIC
    assert app.config["TRUSTED_HOSTS"] == ["helpdesk.example.jp", "internal.lan"]
    client = app.test_client()
    assert client.get("/healthz", base_url=PUBLIC).status_code == 200
    assert client.get("/healthz", base_url="http://internal.lan:8000").status_code == 200
    assert client.get("/healthz", headers={"Host": "evil.tld"}).status_code == 400
    assert client.get("/healthz").status_code == 400  # localhost is not the public address


def test_demo_cli_and_tests_may_run_without_base_url(production_env):
    production_env.setenv("HELPDESK_DEMO", "1")
    app = create_app(_production_config(SECRET_KEY="dev-insecure-change-me"))
    assert app.config["BASE_URL"] == "http://127.0.0.1:5000"
    assert {"127.0.0.1", "localhost"} <= set(app.config["TRUSTED_HOSTS"])
    assert app.test_client().get("/healthz").status_code == 200


def test_worker_refuses_to_start_without_base_url(production_env, monkeypatch, capsys):
    import sys

    from helpdesk import cli

    monkeypatch.setattr(sys, "argv", ["helpdesk", "worker", "--burst"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert "BASE_URL is not set" in str(exited.value.code)


def test_user_row_untouched_by_forged_host(public_app, db, make_user):
    """Refusal happens before any view: a forged host cannot even log in."""
    user = make_user()
    response = public_app.test_client().post("/login", data={"email": user.email, "password": PASSWORD},
                                             headers={"Host": "evil.tld"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is None
