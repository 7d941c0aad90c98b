"""Login, lockout, forced password change, reset tokens, role checks."""
import datetime as dt

from sqlalchemy import select

from helpdesk.accounts import service
from helpdesk.accounts.models import AuditLog, PasswordResetToken, User
from helpdesk.audit import Actor
from helpdesk.notify.models import Outbox
from tests.conftest import PASSWORD


def test_wrong_password_and_unknown_user_give_the_same_message(client, make_user):
    user = make_user()
    wrong = client.post("/login", data={"email": user.email, "password": "nope-nope-1"})
    unknown = client.post("/login", data={"email": "nobody@example.jp", "password": "nope-nope-1"})
    assert wrong.status_code == unknown.status_code == 401
    msg = service.LOGIN_FAILED
    assert msg in wrong.get_data(as_text=True)
    assert msg in unknown.get_data(as_text=True)


def test_login_activates_and_audits(client, db, make_user):
    user = make_user()
    assert user.state == "invited"
    response = client.post("/login", data={"email": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.state == "activated" and user.last_login_at is not None
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.object_id == str(user.id))).all()
    assert "login.succeeded" in actions


def test_lockout_after_repeated_failures(client, db, make_user, app):
    user = make_user()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login", data={"email": user.email, "password": "wrong-Passw0rd"})
    db.session.expire_all()
    assert db.session.get(User, user.id).is_locked()
    # Even the right password is refused while locked, with the same message.
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 401
    assert service.LOGIN_FAILED in response.get_data(as_text=True)


def test_next_redirect_only_to_this_site(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "next": "https://evil.example.com/"})
    assert response.headers["Location"] in ("/", "http://localhost/")


def test_forced_password_change_on_first_login(client, db, make_user):
    user = make_user(must_change_password=True)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert "/account/password" in response.headers["Location"]
    # Any other page sends them back to the change form.
    assert "/account/password" in client.get("/manuals").headers.get("Location", "/account/password")
    response = client.post("/account/password", data={"current_password": PASSWORD,
                                                      "new_password": "Brand-new-pass1",
                                                      "confirm": "Brand-new-pass1"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).must_change_password is False


def test_reset_token_single_use_and_expiry(db, make_user):
    user = make_user()
    assert service.request_password_reset(db.session, user.email, Actor.system())
    mail = db.session.scalars(select(Outbox).where(Outbox.recipient == user.email)).one()
    token = mail.body_text.split("/password/reset/")[1].split()[0]
    service.reset_password_with_token(db.session, token, "Another-pass-9")
    try:
        service.reset_password_with_token(db.session, token, "Another-pass-10")
    except service.AccountError:
        pass
    else:
        raise AssertionError("a used token worked twice")
    # An expired token is refused.
    assert service.request_password_reset(db.session, user.email, Actor.system())
    mail = db.session.scalars(select(Outbox).where(Outbox.recipient == user.email).order_by(Outbox.id.desc())).first()
    token = mail.body_text.split("/password/reset/")[1].split()[0]
    row = db.session.scalars(select(PasswordResetToken).where(PasswordResetToken.used_at.is_(None))).one()
    row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    db.session.commit()
    try:
        service.reset_password_with_token(db.session, token, "Another-pass-11")
    except service.AccountError:
        pass
    else:
        raise AssertionError("an expired token worked")


def test_unknown_email_reset_queues_nothing(db):
    assert service.request_password_reset(db.session, "ghost@example.jp", Actor.system()) is False
    assert db.session.scalars(select(Outbox)).all() == []


def test_password_change_ends_other_sessions(app, db, make_user):
    user = make_user()
    first, second = app.test_client(), app.test_client()
    for c in (first, second):
        assert c.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    first.post("/account/password", data={"current_password": PASSWORD, "new_password": "Brand-new-pass1",
                                          "confirm": "Brand-new-pass1"})
    db.session.expire_all()
    # The other browser is signed out.
    assert second.get("/account/password").status_code == 302


def test_security_headers_and_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["checks"]["database"] == "up"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_bad_input_is_400_not_500(client):
    assert client.get("/login?next=%00abc").status_code == 400
    assert client.get("/login?page=999999999").status_code == 404
    assert client.post("/login", data={"email": "a\x00b", "password": "x"}).status_code == 400
