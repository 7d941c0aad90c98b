"""Home, /healthz and the language switch."""
from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import text

from helpdesk.auth import public
from helpdesk.core import bp
from helpdesk.extensions import csrf, db
from helpdesk.security import safe_next


@bp.get("/favicon.ico")
@public
def favicon():
    """Browsers ask for /favicon.ico whatever the page says; answer with the SVG icon."""
    return current_app.send_static_file("favicon.svg"), 200, {"Cache-Control": "public, max-age=86400"}


@bp.get("/")
@public
def index():
    """Send each user to their starting page."""
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login"))
    if current_user.is_staff:
        candidates = ("tickets.queue", "manuals.index")
    elif current_user.has_role("product_owner"):
        candidates = ("insights.index", "manuals.index")
    else:
        candidates = ("tickets.portal", "manuals.index")
    for endpoint in candidates:
        if endpoint in current_app.view_functions:
            return redirect(url_for(endpoint))
    return redirect(url_for("accounts.change_password"))


@bp.get("/healthz")
@public
def healthz():
    """Report the database and Redis (when configured); 503 when one is down."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "up"
    except Exception:
        db.session.rollback()
        checks["database"] = "down"
    if current_app.config.get("REDIS_URL"):
        try:
            from helpdesk.jobs import redis_connection

            redis_connection().ping()
            checks["redis"] = "up"
        except Exception:
            checks["redis"] = "down"
    ok = all(v == "up" for v in checks.values())
    return {"status": "ok" if ok else "degraded", "checks": checks}, 200 if ok else 503


@bp.post("/lang")
@public
def set_language():
    """Switch the UI language (stored in the session; signed-in users keep it on their account)."""
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        if current_user.is_authenticated and current_user.locale != lang:
            current_user.locale = lang
            db.session.commit()
    return redirect(safe_next(request.form.get("next")) or url_for("core.index"))


del csrf
